"""Where a container image keeps its data uncompressed, as offsets into the image file
(``qemu-img map``), so that those ranges are read with preadv straight from the file, as
qemu-img itself reads them, instead of through qemu-nbd and its socket (two copies more,
and qemu-nbd's one thread: a monolithicSparse VMDK was read at half the raw image's rate).

Only for an image that is one file (no backing file, no data file or extent files), and
only ranges that qemu says hold data (not zero-flagged: a qcow2 zero cluster may keep old
bytes) at a known offset: what has none (compressed grains, a format that reports none)
is still read through qemu-nbd. Blocking: called while the image is opened, in a worker
thread.
"""

from __future__ import annotations

import bisect
import json
import os
import subprocess
from array import array
from collections.abc import Iterable, Iterator

#: Mapped ranges kept at most (24 bytes each); a more fragmented image is read through
#: qemu-nbd alone rather than hold a larger map.
MAX_RANGES = 1 << 20
_TIMEOUT = 120.0


class HostMap:
    """Sorted, disjoint ``(start, length, host offset)`` ranges of the virtual disk stored
    as they read, at ``host offset`` of the image file."""

    __slots__ = ("_host", "_lengths", "_starts")

    def __init__(self, ranges: Iterable[tuple[int, int, int]] = ()) -> None:
        self._starts = array("q")
        self._lengths = array("q")
        self._host = array("q")
        for start, length, host in ranges:
            self.add(start, length, host)

    def add(self, start: int, length: int, host: int) -> None:
        """Append a range after the last one, merged with it where both the disk and the
        file continue it."""
        if self._starts:
            last = len(self._starts) - 1
            end = self._starts[last] + self._lengths[last]
            if end == start and self._host[last] + self._lengths[last] == host:
                self._lengths[last] += length
                return
        self._starts.append(start)
        self._lengths.append(length)
        self._host.append(host)

    def __len__(self) -> int:
        return len(self._starts)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        """The ranges in order, as ``(start, length, host offset)``."""
        return zip(self._starts, self._lengths, self._host, strict=True)

    @property
    def mapped_bytes(self) -> int:
        return sum(self._lengths)

    def segments(self, offset: int, length: int) -> list[tuple[int, int, int]]:
        """``[offset, offset + length)`` cut into ``(start, length, host)`` pieces that
        cover it in order; ``host`` is -1 where the range is not mapped."""
        end = offset + length
        pieces: list[tuple[int, int, int]] = []
        index = max(0, bisect.bisect_right(self._starts, offset) - 1)
        position = offset
        while position < end:
            if index < len(self._starts):
                start, size = self._starts[index], self._lengths[index]
            else:
                start, size = end, 0
            if start + size <= position:  # a range before this position
                index += 1
                continue
            if start > position:  # a gap up to the next range
                stop = min(start, end)
                pieces.append((position, stop - position, -1))
                position = stop
                continue
            stop = min(start + size, end)
            pieces.append((position, stop - position, self._host[index] + position - start))
            position = stop
            index += 1
        return pieces


def parse_map_line(line: str) -> tuple[int, int, int] | None:
    """One entry of ``qemu-img map --output=json`` (one per line) as ``(start, length,
    host offset)`` when it is data stored as it reads in the image file, else None."""
    text = line.strip().lstrip("[").rstrip("]").rstrip(",").strip()
    if not text:
        return None
    entry = json.loads(text)
    offset = entry.get("offset")
    if (
        not isinstance(offset, int)
        or entry.get("depth", 0) != 0
        or not entry.get("data")
        or entry.get("zero")
        or entry.get("compressed")
    ):
        return None
    start, length = entry.get("start"), entry.get("length")
    if not isinstance(start, int) or not isinstance(length, int) or length <= 0:
        return None
    return start, length, offset


def host_map(qemu_img: str, path: str, fmt: str) -> HostMap | None:
    """The image's mapped ranges, merged where they follow each other in both the disk and
    the file; None when qemu-img cannot tell (then everything is read through qemu-nbd)."""
    ranges = HostMap()  # straight into arrays: a million ranges as tuples took 100 MiB
    try:
        with subprocess.Popen(
            [qemu_img, "map", "--output=json", "-f", fmt, "--", path],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        ) as child:
            assert child.stdout is not None
            try:
                for line in child.stdout:
                    found = parse_map_line(line)
                    if found is None:
                        continue
                    ranges.add(*found)
                    if len(ranges) > MAX_RANGES:
                        child.kill()
                        return None
                if child.wait(timeout=_TIMEOUT) != 0:
                    return None
            finally:
                if child.poll() is None:
                    child.kill()
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    return ranges if len(ranges) else None


def pread_full(fd: int, view: memoryview, offset: int) -> None:
    """Fill ``view`` from ``offset`` of ``fd``; a file shorter than its map says is an
    OSError (EIO), never zeros made up."""
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got == 0:
            raise OSError(5, "the image file ends before its mapped data")
        done += got
