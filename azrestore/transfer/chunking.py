"""Read windows: the pieces of the disk that are read (at most a chunk each, never across
the chunk grid), and the holes between them, skipped unread."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..formats.sizes import SECTOR, round_down, round_up


@dataclass(frozen=True, slots=True)
class Window:
    """A 512-aligned range of the virtual disk to read (and maybe send)."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


def read_windows(
    extents: Iterable[tuple[int, int]],
    *,
    virtual_size: int,
    chunk_size: int,
    join: Callable[[int, int], bool] | None = None,
) -> Iterator[Window]:
    """Split data extents into read windows.

    Extents are widened to 512-byte boundaries (clipped to ``virtual_size``), overlapping or
    touching ones are joined, and each is cut on the ``chunk_size`` grid, so no window
    crosses a grid line and every window is at most ``chunk_size``. Everything outside the
    windows (holes, and the padding up to ``virtual_size``) reads as zeros and is skipped.

    ``join(start, end)``, asked (lazily, as windows are taken) of each hole that lies
    inside one chunk of the grid, says whether it is read with the extents either side
    of it (so that one request may cover both: see :mod:`azrestore.transfer.requestplan`).
    """
    pending_start = pending_end = -1
    for offset, length in extents:
        if length <= 0:
            continue
        start = round_down(offset, SECTOR)
        end = min(round_up(offset + length, SECTOR), virtual_size)
        if start >= end:
            continue
        if pending_end >= start or (
            join is not None
            and pending_end > 0
            and (pending_end - 1) // chunk_size == start // chunk_size
            and join(pending_end, start)
        ):
            pending_end = max(pending_end, end)
            continue
        if pending_end > pending_start:
            yield from _cut(pending_start, pending_end, chunk_size)
        pending_start, pending_end = start, end
    if pending_end > pending_start:
        yield from _cut(pending_start, pending_end, chunk_size)


def _cut(start: int, end: int, chunk_size: int) -> Iterator[Window]:
    position = start
    while position < end:
        boundary = min(round_down(position, chunk_size) + chunk_size, end)
        yield Window(position, boundary - position)
        position = boundary
