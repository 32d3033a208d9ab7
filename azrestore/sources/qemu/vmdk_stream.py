"""A streamOptimized VMDK read in-process, without qemu-nbd: its grain tables are read once
at open, and each read decompresses the grains it spans (zlib-ng, which lets go of the GIL,
so that the transfer's worker threads decompress on every core where qemu-nbd used one).

Only for a VMDK that is one file whose header :func:`~...formats.vmdk_stream.parse_header`
reads; anything else (another version, unknown flags, a parent) is read through qemu-nbd.
Blocking: called in worker threads.
"""

from __future__ import annotations

import os
import threading
from array import array

from zlib_ng import zlib_ng as zlib

from ...errors import InputError, SourceError
from ...formats import vmdk_stream as vs
from ..base import ChainLink
from ..closing import ClosedOnExit
from .hostmap import pread_full
from .info import ImageInfo

#: zlib-ng's error class (its stub declares it as an instance, not a class).
_ZLIB_ERROR: type[Exception] = zlib.error  # type: ignore[assignment]

#: Bytes of grain tables kept at most (4 per grain: 64 MiB maps 1 TiB of 64 KiB grains);
#: an image with more is read through qemu-nbd.
MAX_TABLE_BYTES = 64 << 20
#: The most of the file read in one pread (several grains following each other, or one
#: grain's two at most). Such buffers are pooled: a read takes one and gives it back, so
#: there are as many as reads at once (the transfer's concurrency), allocated once.
_MAX_SPAN = 256 << 10


class StreamVmdkImage(ClosedOnExit):
    """A streamOptimized VMDK (format ``vmdk``) decompressed as it is read."""

    def __init__(
        self,
        info: ImageInfo,
        shown: str,
        fd: int,
        header: vs.StreamHeader,
        tables: list[array[int] | None],
        file_size: int,
    ) -> None:
        self.path = shown
        self.size = header.capacity
        self.is_block_device = False
        self.files = info.files
        self._chain = info.chain
        self._fd = fd
        self._header = header
        self._tables = tables
        self._file_size = file_size
        self._spans: list[bytearray] = []
        self._lock = threading.Lock()
        #: Compressed bytes decompressed, and the bytes they gave (for benchmarks).
        self.compressed_bytes = 0
        self.decompressed_bytes = 0

    @property
    def format(self) -> str:
        return "vmdk"

    @property
    def chain(self) -> tuple[ChainLink, ...]:
        return self._chain

    def _entry(self, grain: int) -> int:
        table = self._tables[grain // self._header.gtes_per_gt]
        return 0 if table is None else table[grain % self._header.gtes_per_gt]

    def _holds_data(self, entry: int) -> bool:
        if entry == vs.GTE_UNALLOCATED:
            return False
        return not (entry == vs.GTE_ZEROED and self._header.zeroed_grains)

    def data_extents(self) -> list[tuple[int, int]]:
        """The allocated grains (not zeroed ones), merged, cut at the disk's end."""
        extents: list[tuple[int, int]] = []
        grain_size, per_table = self._header.grain_size, self._header.gtes_per_gt
        for index, table in enumerate(self._tables):
            if table is None:
                continue
            for slot, entry in enumerate(table):
                if not self._holds_data(entry):
                    continue
                start = (index * per_table + slot) * grain_size
                if start >= self.size:
                    break
                length = min(grain_size, self.size - start)
                if extents and extents[-1][0] + extents[-1][1] == start:
                    extents[-1] = (extents[-1][0], extents[-1][1] + length)
                else:
                    extents.append((start, length))
        return extents

    def allocated_bytes(self) -> int:
        return sum(length for _, length in self.data_extents())

    def read_into(self, buffer: memoryview, offset: int) -> int:
        """Fill ``buffer`` from ``offset``: unallocated and zeroed grains as zeros, the
        others decompressed; bytes past the end are zeroed."""
        want = max(0, min(len(buffer), self.size - offset))
        if want < len(buffer):
            buffer[want:] = bytes(len(buffer) - want)
        if want == 0:
            return 0
        grain_size = self._header.grain_size
        grains: list[tuple[int, int]] = []  # (marker's sector, grain)
        for grain in range(offset // grain_size, (offset + want - 1) // grain_size + 1):
            entry = self._entry(grain)
            if self._holds_data(entry):
                grains.append((entry, grain))
            else:
                start, stop = self._overlap(grain, offset, want)
                buffer[start:stop] = bytes(stop - start)
        grains.sort()
        run: list[tuple[int, int]] = []
        for item in grains:
            if run and (
                item[0] - run[-1][0] > 2 * grain_size // vs.SECTOR
                or (item[0] - run[0][0]) * vs.SECTOR + 2 * grain_size > _MAX_SPAN
            ):
                self._read_run(run, buffer, offset, want)
                run = []
            run.append(item)
        if run:
            self._read_run(run, buffer, offset, want)
        return want

    def _overlap(self, grain: int, offset: int, want: int) -> tuple[int, int]:
        """Where grain ``grain`` lies in the buffer of ``want`` bytes read at ``offset``."""
        start = grain * self._header.grain_size
        end = min(start + self._header.grain_size, self.size)
        return max(start, offset) - offset, min(end, offset + want) - offset

    def _read_run(
        self, run: list[tuple[int, int]], buffer: memoryview, offset: int, want: int
    ) -> None:
        """Decompress the grains of ``run`` (sorted by where they lie in the file, close
        together), read with one pread, into their places in ``buffer``."""
        base = run[0][0] * vs.SECTOR
        end = min(run[-1][0] * vs.SECTOR + 2 * self._header.grain_size, self._file_size)
        with self._lock:
            pooled = self._spans.pop() if self._spans else None
        if pooled is None or len(pooled) < end - base:
            pooled = bytearray(max(end - base, _MAX_SPAN, 2 * self._header.grain_size))
        try:
            self._inflate_run(run, memoryview(pooled)[: end - base], base, buffer, offset, want)
        finally:
            with self._lock:
                self._spans.append(pooled)

    def _inflate_run(
        self,
        run: list[tuple[int, int]],
        span: memoryview,
        base: int,
        buffer: memoryview,
        offset: int,
        want: int,
    ) -> None:
        grain_size = self._header.grain_size
        end = base + len(span)
        try:
            pread_full(self._fd, span, base)
        except OSError as exc:
            raise SourceError(
                f"{self.path}: cannot read {end - base} bytes at byte {base} of the file:"
                f" {exc.strerror or exc}"
            ) from None
        compressed = decompressed = 0
        for sector, grain in run:
            at = sector * vs.SECTOR - base
            try:
                _, size = vs.parse_marker(span[at : at + vs.MARKER_BYTES], grain_size)
                if at + vs.MARKER_BYTES + size > len(span):
                    raise vs.VmdkStreamError(
                        f"its {size} compressed bytes run past the end of the file"
                    )
                data = _inflate(
                    span[at + vs.MARKER_BYTES : at + vs.MARKER_BYTES + size], grain_size
                )
            except (vs.VmdkStreamError, _ZLIB_ERROR) as exc:
                raise SourceError(
                    f"{self.path}: grain {grain} (at byte {sector * vs.SECTOR} of the file)"
                    f" cannot be read: {exc}"
                ) from None
            start, stop = self._overlap(grain, offset, want)
            first = grain * grain_size
            needed = min(grain_size, self.size - first)
            if not needed <= len(data) <= grain_size:
                raise SourceError(
                    f"{self.path}: grain {grain} (at byte {sector * vs.SECTOR} of the file)"
                    f" decompresses to {len(data)} bytes, not {needed}"
                )
            skip = offset + start - first
            buffer[start:stop] = memoryview(data)[skip : skip + stop - start]
            compressed += size
            decompressed += len(data)
        with self._lock:
            self.compressed_bytes += compressed
            self.decompressed_bytes += decompressed

    def read_at(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        out = bytearray(length)
        self.read_into(memoryview(out), offset)
        return bytes(out)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __repr__(self) -> str:
        return f"StreamVmdkImage({self.path!r}, size={self.size})"


def _inflate(packed: memoryview, grain_size: int) -> bytes:
    """One grain's zlib stream decompressed: at most ``grain_size`` bytes are made (a
    damaged grain cannot make more, as a zlib bomb would). With zlib-ng (python-zlib-ng,
    the same API as the standard module, and like it lets go of the GIL): on this
    project's machines it inflated a 64 KiB grain several times faster than zlib 1.2.13,
    whose Adler-32 took most of the time."""
    stream = zlib.decompressobj()
    data = stream.decompress(packed, grain_size)
    if not stream.eof and (stream.decompress(stream.unconsumed_tail, 1) or not stream.eof):
        raise vs.VmdkStreamError("its compressed data is not one whole grain")
    return data


def open_stream_vmdk(path: str, info: ImageInfo) -> StreamVmdkImage | None:
    """The one-file VMDK at ``path`` (its qemu-img ``info``) read in-process, or None
    when it is not a streamOptimized one read here (then qemu-nbd reads it). Raises
    InputError for a damaged one: a truncated stream, a table past the file's end."""
    try:
        fd = os.open(info.files[0], os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # qemu opened it: let qemu-nbd say what is wrong
    try:
        found = _tables(fd)
    except vs.VmdkStreamError as exc:
        os.close(fd)
        raise InputError(f"{path}: {exc}") from None
    except BaseException:
        os.close(fd)
        raise
    if found is None or found[0].capacity != info.size:
        os.close(fd)
        return None
    return StreamVmdkImage(info, path, fd, *found)


def _read(fd: int, offset: int, length: int, file_size: int, what: str) -> bytes:
    if offset + length > file_size:
        raise vs.VmdkStreamError(f"the VMDK's {what} lies past the end of the file")
    buffer = bytearray(length)
    pread_full(fd, memoryview(buffer), offset)
    return bytes(buffer)


def _tables(fd: int) -> tuple[vs.StreamHeader, list[array[int] | None], int] | None:
    """The header, grain tables (None where the directory has none) and file size."""
    file_size = os.fstat(fd).st_size
    sectors = file_size // vs.SECTOR
    header = vs.parse_header(_read(fd, 0, vs.SECTOR, file_size, "header"))
    if header is not None and header.gd_at_end:
        tail = sectors * vs.SECTOR - vs.FOOTER_BYTES
        if tail < vs.SECTOR:
            raise vs.VmdkStreamError("the VMDK is too short for its footer")
        header = vs.parse_footer(_read(fd, tail, vs.FOOTER_BYTES, file_size, "footer"))
    if header is None:
        return None
    directory = vs.grain_directory(
        _read(fd, header.gd_offset * vs.SECTOR, 4 * header.gd_entries, file_size, "directory"),
        header,
        sectors,
    )
    if sum(1 for entry in directory if entry) * 4 * header.gtes_per_gt > MAX_TABLE_BYTES:
        return None
    tables: list[array[int] | None] = []
    last = 0
    for index, sector in enumerate(directory):
        if not sector:
            tables.append(None)
            continue
        table = vs.grain_table(
            _read(fd, sector * vs.SECTOR, 4 * header.gtes_per_gt, file_size, "grain table"),
            header,
            index,
            file_size,
        )
        tables.append(table)
        last = max(last, max(table, default=0))
    if last > vs.GTE_ZEROED or (last == vs.GTE_ZEROED and not header.zeroed_grains):
        # The last grain in the file ends within it: a truncated stream is refused here.
        marker = _read(fd, last * vs.SECTOR, vs.MARKER_BYTES, file_size, "last grain")
        _, size = vs.parse_marker(marker, header.grain_size)
        if last * vs.SECTOR + vs.MARKER_BYTES + size > file_size:
            raise vs.VmdkStreamError(
                f"the VMDK's last grain (at byte {last * vs.SECTOR}) ends past the end of"
                f" the file ({file_size} bytes): the file is truncated"
            )
    return header, tables, file_size
