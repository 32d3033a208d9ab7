"""Read a written target back and compare it with the source, with bounded memory.

The blob's written ranges (Get Page Ranges, a segment at a time) and the source's data
extents are joined and cut into windows of at most ``chunk_size``; everything outside them
is zero on both sides (unwritten pages read as zeros, holes read as zeros). Each window is
read from the source (its ``read_into``) and from the target (ranged reads of the written
parts, zeros elsewhere) and compared; so a range not listed by the target must be zeros in the
source. Then the footer is checked as Azure checks it, and against the footer azrestore
writes for this disk, all but its timestamp, unique id and checksum.

Memory: each window takes one slot and one buffer of a :class:`TransferBudget` (its own, or
one shared with other transfers) and uses its halves for the two sides, so verifying stays
within ``concurrency * chunk_size`` whatever the disk's size or the number of disks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from ..errors import InputError, SinkError, first_error
from ..formats.sizes import FOOTER_SIZE, SECTOR, GiB, blob_size, round_down, virtual_size
from ..formats.vhd import VhdError, fixed_vhd_footer, validate_fixed_vhd_footer
from ..sources.base import DiskSource
from ..sources.open import open_source
from .budget import TransferBudget
from .chunking import Window, read_windows
from .config import TransferConfig
from .retry import call_with_retries
from .sink import ReadableTarget

#: Get Page Ranges is asked one segment at a time, so a huge, fragmented blob's range
#: list never sits in memory whole.
SEGMENT = 64 * GiB
#: Footer bytes that differ from one upload to the next: timestamp, checksum, unique id.
_FOOTER_VOLATILE = ((24, 28), (64, 84))

VerifyProgress = Callable[[int, int], None]
_T = TypeVar("_T")


@dataclass(slots=True)
class VerifyResult:
    """What :func:`verify_disk` found. ``differences`` holds the first few offsets (in
    the blob) where the target differs from the source, ``footer_problem`` what is wrong
    with the footer (None when it is right)."""

    target: str
    disk_size: int
    blob_size: int
    target_size: int
    bytes_compared: int = 0
    bytes_read_back: int = 0
    windows_differing: int = 0
    differences: list[int] = field(default_factory=list)
    footer_problem: str | None = None
    seconds: float = 0.0

    @property
    def identical(self) -> bool:
        return (
            self.target_size == self.blob_size
            and not self.windows_differing
            and self.footer_problem is None
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "url": self.target,
            "disk_size": self.disk_size,
            "blob_size": self.blob_size,
            "target_size": self.target_size,
            "bytes_compared": self.bytes_compared,
            "bytes_read_back": self.bytes_read_back,
            "windows_differing": self.windows_differing,
            "differences": list(self.differences),
            "footer_problem": self.footer_problem,
            "seconds": round(self.seconds, 3),
        }


async def verify_disk(
    source: DiskSource | str | os.PathLike[str],
    target: ReadableTarget,
    *,
    config: TransferConfig | None = None,
    max_differences: int = 10,
    on_progress: VerifyProgress | None = None,
    budget: TransferBudget | None = None,
    image_format: str | None = None,
) -> VerifyResult:
    """Compare ``target`` (a written fixed VHD) with the ``source`` it came from: an open
    :class:`~azrestore.sources.base.DiskSource` (left open) or a location that
    :func:`~azrestore.sources.open.open_source` opens (``image_format`` forcing one).

    Uses ``config``'s concurrency, chunk size and retry policy. ``on_progress(done,
    total)`` is called with bytes of the blob covered so far. ``budget`` shares slots and
    buffers with other transfers. Raises only when the target cannot be read (retries
    spent); differences are reported in the result.
    """
    config = config or TransferConfig()
    budget = budget or TransferBudget.from_config(config)
    args = (target, config, budget, max_differences, on_progress)
    if not isinstance(source, (str, os.PathLike)):
        return await _Verify(source, *args).run()
    image = await open_source(source, image_format=image_format)
    try:
        return await _Verify(image, *args).run()
    finally:
        image.close()


class _Verify:
    def __init__(
        self,
        image: DiskSource,
        target: ReadableTarget,
        config: TransferConfig,
        budget: TransferBudget,
        max_differences: int,
        on_progress: VerifyProgress | None,
    ) -> None:
        self.image = image
        self.target = target
        self.config = config
        self.max_differences = max_differences
        self.on_progress = on_progress
        self.virtual_size = virtual_size(image.size)
        self.slots = budget.slots
        self.pool = budget.pool
        # One buffer per window, half for each side.
        self.window_size = round_down(budget.chunk_size // 2, SECTOR)
        if self.window_size < SECTOR:
            raise InputError("verifying needs a chunk size of at least 1 KiB")
        self.result = VerifyResult(
            target=target.description,
            disk_size=image.size,
            blob_size=blob_size(image.size),
            target_size=-1,
        )
        self.done = 0

    async def _retrying(self, what: str, operation: Callable[[], Awaitable[_T]]) -> _T:
        config = self.config
        return await call_with_retries(
            operation,
            what=f"{self.target.description}: {what}",
            max_attempts=config.max_attempts,
            base=config.backoff_base,
            cap=config.backoff_max,
            request_timeout=config.request_timeout,
        )

    async def run(self) -> VerifyResult:
        started = time.monotonic()
        result = self.result
        result.target_size = await self._retrying("size", self.target.target_size)
        if result.target_size != result.blob_size:
            result.footer_problem = (
                f"the target is {result.target_size} bytes; this disk's VHD is"
                f" {result.blob_size} bytes"
            )
            result.seconds = time.monotonic() - started
            return result
        extents = await anyio.to_thread.run_sync(self.image.data_extents)
        try:
            async with anyio.create_task_group() as tasks:
                index = 0
                for segment in range(0, self.virtual_size, SEGMENT):
                    end = min(segment + SEGMENT, self.virtual_size)
                    written = await self._retrying(
                        f"page ranges {segment}-{end - 1}",
                        partial(self.target.page_ranges, segment, end),
                    )
                    mine: list[tuple[int, int]] = []
                    while index < len(extents) and extents[index][0] < end:
                        offset, length = extents[index]
                        first, last = max(offset, segment), min(offset + length, end)
                        if first < last:
                            mine.append((first, last - first))
                        if offset + length > end:
                            break  # the extent goes on in the next segment
                        index += 1
                    mine.extend((start, stop - start) for start, stop in written)
                    mine.sort()
                    cursor = 0
                    for window in read_windows(mine, virtual_size=end, chunk_size=self.window_size):
                        # ranges of the target inside this window, relative to it
                        while cursor < len(written) and written[cursor][1] <= window.offset:
                            cursor += 1
                        parts = []
                        probe = cursor
                        while probe < len(written) and written[probe][0] < window.end:
                            first = max(written[probe][0], window.offset) - window.offset
                            last = min(written[probe][1], window.end) - window.offset
                            parts.append((first, last))
                            probe += 1
                        await self.slots.acquire()
                        tasks.start_soon(self._compare, window, parts)
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        await self._check_footer()
        self._progress(self.virtual_size - self.done + FOOTER_SIZE)
        result.differences.sort()
        result.seconds = time.monotonic() - started
        return result

    def _progress(self, length: int) -> None:
        self.done += length
        if self.on_progress is not None:
            self.on_progress(self.done, self.result.blob_size)

    async def _compare(self, window: Window, parts: list[tuple[int, int]]) -> None:
        try:
            buffer = self.pool.take()
            try:
                half = self.window_size
                source = memoryview(buffer)[: window.length]
                target = memoryview(buffer)[half : half + window.length]
                await anyio.to_thread.run_sync(
                    _read_and_zero, self.image, source, window.offset, target, parts
                )
                for first, last in parts:
                    view = target[first:last]
                    await self._retrying(
                        f"read bytes {window.offset + first}-{window.offset + last - 1}",
                        partial(self.target.read_into, window.offset + first, view),
                    )
                    self.result.bytes_read_back += last - first
                differs = await anyio.to_thread.run_sync(_first_difference, source, target)
                self.result.bytes_compared += window.length
                if differs is not None:
                    self._note(window.offset + differs)
                self._progress(window.length)
            finally:
                self.pool.give(buffer)
        finally:
            self.slots.release()

    def _note(self, offset: int) -> None:
        result = self.result
        result.windows_differing += 1
        result.differences.append(offset)
        if len(result.differences) > self.max_differences:
            result.differences.sort()
            del result.differences[self.max_differences :]

    async def _check_footer(self) -> None:
        footer = bytearray(FOOTER_SIZE)
        try:
            await self._retrying(
                "read the footer",
                partial(self.target.read_into, self.virtual_size, memoryview(footer)),
            )
        except SinkError as exc:
            self.result.footer_problem = f"cannot read the footer: {exc}"
            return
        self.result.bytes_read_back += FOOTER_SIZE
        try:
            validate_fixed_vhd_footer(bytes(footer), self.result.blob_size)
        except VhdError as exc:
            self.result.footer_problem = str(exc)
            return
        expected = bytearray(fixed_vhd_footer(self.virtual_size))
        for start, end in _FOOTER_VOLATILE:
            expected[start:end] = footer[start:end]
        if expected != footer:
            first = next(i for i in range(FOOTER_SIZE) if expected[i] != footer[i])
            self.result.footer_problem = (
                f"the footer differs from the one expected for this disk at byte {first}"
            )


def _read_and_zero(
    image: DiskSource,
    source: memoryview,
    offset: int,
    target: memoryview,
    parts: list[tuple[int, int]],
) -> None:
    """Worker thread: read the source window; zero the target buffer outside ``parts``."""
    import numpy as np  # here: an upload that does not verify never loads it

    image.read_into(source, offset)
    array = np.frombuffer(target, dtype=np.uint8)
    cursor = 0
    for first, last in parts:
        array[cursor:first] = 0
        cursor = last
    array[cursor:] = 0


def _first_difference(source: memoryview, target: memoryview) -> int | None:
    """Worker thread: the first offset where the buffers differ, or None."""
    import numpy as np

    # Windows are whole sectors, so compare 8 bytes at a time (numpy drops the GIL).
    words_a = np.frombuffer(source, dtype=np.uint64)
    words_b = np.frombuffer(target, dtype=np.uint64)
    if np.array_equal(words_a, words_b):
        return None
    a = np.frombuffer(source, dtype=np.uint8)
    b = np.frombuffer(target, dtype=np.uint8)
    return int(np.flatnonzero(a != b)[0])
