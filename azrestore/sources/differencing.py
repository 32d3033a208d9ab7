"""A differencing VHD or VHDX read directly: the sectors its own tables say it holds come
from its file (preadv), those it says are zeros are zeros, and the rest from its parent,
which is opened like any source (fixed or dynamic VHD/VHDX, or another differencing
file); ranges that no file of the chain holds are neither read nor sent. The parent is
found from the child's locators and must carry the identity the child links it by.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..errors import InputError, SourceError, unreadable_file
from .base import ChainLink, DiskSource
from .closing import ClosedOnExit
from .diffmaps import (
    ZERO_HOST,
    ChildMap,
    differencing_kind,
    parent_identity,
    read_vhd_child,
    read_vhdx_child,
    show_identity,
)
from .qemu.hostmap import HostMap, pread_full

#: Opens a parent that is not differencing, given its path and format.
Opener = Callable[[str, str], DiskSource]
#: Most files a chain may have (the top one included).
MAX_CHAIN = 32


class DifferencingImage(ClosedOnExit):
    """A differencing disk over its parent. ``files`` is every file of the chain, top
    first, for the journal's identity."""

    is_block_device = False

    def __init__(self, path: str, fd: int, child: ChildMap, parent: DiskSource) -> None:
        self.path = path
        self.size = child.size
        self._format = child.format
        self._fd = fd
        self._ranges: HostMap = child.ranges
        self._parent = parent
        self.files = (path, *(getattr(parent, "files", ()) or (parent.path,)))

    @property
    def format(self) -> str:
        return self._format

    @property
    def chain(self) -> tuple[ChainLink, ...]:
        return (ChainLink(self.path, self._format), *self._parent.chain)

    @property
    def parent(self) -> DiskSource:
        return self._parent

    def data_extents(self) -> list[tuple[int, int]]:
        own = [(start, length) for start, length, host in self._ranges if host < ZERO_HOST]
        covered = [(start, length) for start, length, _ in self._ranges]
        below = _minus(_clip(self._parent.data_extents(), self.size), covered)
        return _merge(sorted(own + below))

    def allocated_bytes(self) -> int:
        return sum(length for _, length in self.data_extents())

    def read_into(self, buffer: memoryview, offset: int) -> int:
        want = max(0, min(len(buffer), self.size - offset))
        for start, length, host in self._ranges.segments(offset, want):
            view = buffer[start - offset : start - offset + length]
            if host >= ZERO_HOST:
                view[:] = bytes(length)
            elif host >= 0:
                try:
                    pread_full(self._fd, view, host)
                except OSError as exc:
                    raise SourceError(
                        f"{self.path}: cannot read {length} bytes at offset {start}:"
                        f" {exc.strerror or exc}"
                    ) from None
            else:
                self._parent.read_into(view, start)  # zeros past the parent's end
        if want < len(buffer):
            buffer[want:] = bytes(len(buffer) - want)
        return want

    def read_at(self, offset: int, length: int) -> bytes:
        buffer = bytearray(max(0, min(length, self.size - offset)))
        self.read_into(memoryview(buffer), offset)
        return bytes(buffer)

    def close(self) -> None:
        try:
            self._parent.close()
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __repr__(self) -> str:
        return f"DifferencingImage({self.path!r}, size={self.size}, format={self._format!r})"


def open_differencing(
    path: str, fmt: str, opener: Opener, *, below: tuple[str, ...] = ()
) -> DifferencingImage:
    """Open the differencing file at ``path`` (``fmt``: ``vpc`` or ``vhdx``) and, through
    its locators, its parents (one that is not differencing with ``opener``, given the
    parent's path and format). ``below`` holds the real paths of the children above it.
    Raises InputError naming the file for what cannot be used; nothing is left open."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise unreadable_file(path, exc, action="open") from None
    try:
        child = read_vhd_child(path, fd) if fmt == "vpc" else read_vhdx_child(path, fd)
        parent = _open_parent(path, child, opener, (*below, os.path.realpath(path)))
    except BaseException:
        os.close(fd)
        raise
    return DifferencingImage(path, fd, child, parent)


def _open_parent(
    child_path: str, child: ChildMap, opener: Opener, below: tuple[str, ...]
) -> DiskSource:
    found = next((name for name in child.candidates if os.path.isfile(name)), None)
    if found is None:
        tried = ", ".join(child.candidates) or "nothing"
        raise InputError(f"{child_path}: its parent '{child.named}' is not found (tried: {tried})")
    if os.path.realpath(found) in below:
        raise InputError(f"{child_path}: its parent {found} is in the chain above it: a loop")
    if len(below) >= MAX_CHAIN:
        raise InputError(f"{child_path}: a chain of more than {MAX_CHAIN} differencing files")
    identity = parent_identity(found, child.format, child_path)
    if identity not in child.linkages:
        what = "Unique Id" if child.format == "vpc" else "DataWriteGuid"
        raise InputError(
            f"{child_path}: its parent {found} has {what}"
            f" {show_identity(identity, child.format)}, but the child was made from one"
            f" with {show_identity(child.linkages[0], child.format)} (the parent changed"
            " after the child was made, or is another disk)"
        )
    kind = differencing_kind(found)
    if kind is not None:
        return open_differencing(found, kind, opener, below=below)
    return opener(found, child.format)


def _clip(extents: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    return [(start, min(length, size - start)) for start, length in extents if start < size]


def _minus(extents: list[tuple[int, int]], covered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of sorted ``extents`` outside sorted, disjoint ``covered``."""
    out: list[tuple[int, int]] = []
    index = 0
    for start, length in extents:
        position, end = start, start + length
        while index < len(covered) and covered[index][0] + covered[index][1] <= position:
            index += 1
        scan = index
        while position < end:
            if scan >= len(covered) or covered[scan][0] >= end:
                out.append((position, end - position))
                break
            cover_start, cover_length = covered[scan]
            if cover_start > position:
                out.append((position, cover_start - position))
            position = max(position, cover_start + cover_length)
            scan += 1
    return out


def _merge(extents: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, length in extents:
        if merged and merged[-1][0] + merged[-1][1] >= start:
            last_start, last_length = merged[-1]
            merged[-1] = (last_start, max(last_start + last_length, start + length) - last_start)
        else:
            merged.append((start, length))
    return merged
