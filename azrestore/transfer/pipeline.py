"""The upload pipeline: a disk source streamed into a :class:`PageSink` as a fixed VHD.

Per chunk: take a concurrency slot, *then* a pooled buffer, read the window (the source's
``read_into``: preadv for a raw file), find its non-zero runs and compute their digests,
all in one worker-thread call; then send each run as a Put Page (with retries) on the
event loop. Memory in use is at most ``concurrency`` buffers of ``chunk_size`` bytes,
whatever the disk's size (or the number of disks sharing one :class:`TransferBudget`).
Holes (extents outside the source's data extents) are not read, unless the request
planner (:mod:`azrestore.transfer.requestplan`) finds a short one cheaper to send than
a request; all-zero blocks are never sent on their own (every request starts and ends
with non-zero data); the VHD footer is written last.

With a journal (``resume=``), each window is recorded once all its requests are
acknowledged, and a later run skips (does not even read) the recorded windows.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence

import anyio
import anyio.to_thread

from ..errors import AuthenticationExpired, SinkError, first_error
from ..formats.sizes import FOOTER_SIZE, SECTOR, blob_size, round_down, round_up, virtual_size
from ..formats.vhd import fixed_vhd_footer
from ..formats.zeros import nonzero_runs
from ..sources.base import DiskSource
from ..sources.open import open_source
from .bandwidth import Bandwidth
from .budget import TransferBudget
from .chunking import Window, read_windows
from .config import TransferConfig
from .journal import Journal, Range
from .progress import Accounting, ProgressCallback, TransferResult
from .requestplan import RequestPlanner
from .resume import ResumeOptions, open_journal, release_lease
from .retry import THROTTLED, call_with_retries
from .sink import MAX_RENEWALS, PageSink

#: (start, end, digest) of one request inside a chunk buffer
_Piece = tuple[int, int, bytes | None]


async def upload_disk(
    source: DiskSource | str | os.PathLike[str],
    sink: PageSink,
    *,
    config: TransferConfig | None = None,
    on_progress: ProgressCallback | Sequence[ProgressCallback] | None = None,
    bandwidth: Bandwidth | None = None,
    budget: TransferBudget | None = None,
    resume: ResumeOptions | None = None,
    image_format: str | None = None,
) -> TransferResult:
    """Upload a disk source to ``sink`` as a fixed VHD and return what was moved.

    ``source`` is an open :class:`~azrestore.sources.base.DiskSource` (left open) or a
    location (a file of any format, or an NBD URL: opened with
    :func:`~azrestore.sources.open.open_source`, ``image_format`` forcing its format,
    checked and closed here). ``on_progress`` callbacks receive :class:`ProgressEvent`s on the event
    loop thread. ``bandwidth`` may be shared between concurrent uploads; by default one is
    made from ``config.max_bandwidth``. ``budget`` shares request slots, chunk buffers and
    bandwidth with other uploads (its own bandwidth then wins over ``bandwidth``); by
    default the upload has a budget of its own from ``config``. ``resume`` keeps a journal
    so that a run killed at any moment can be continued by the same call (see
    :class:`ResumeOptions`; the sink needs ``identity()``). Works under asyncio, uvloop
    and anyio.
    """
    config = config or TransferConfig()
    if not isinstance(source, (str, os.PathLike)):
        return await _Upload(source, sink, config, on_progress, bandwidth, budget, resume).run()
    image = await open_source(source, image_format=image_format)
    try:
        return await _Upload(image, sink, config, on_progress, bandwidth, budget, resume).run()
    finally:
        image.close()


class _Upload:
    def __init__(
        self,
        image: DiskSource,
        sink: PageSink,
        config: TransferConfig,
        on_progress: ProgressCallback | Sequence[ProgressCallback] | None,
        bandwidth: Bandwidth | None,
        budget: TransferBudget | None,
        resume: ResumeOptions | None,
    ) -> None:
        self.image = image
        self.sink = sink
        self.config = config
        self.virtual_size = virtual_size(image.size)
        if on_progress is None:
            subscribers = []
        elif callable(on_progress):
            subscribers = [on_progress]
        else:
            subscribers = list(on_progress)
        self.accounting = Accounting(
            disk_size=image.size,
            virtual_size=self.virtual_size,
            blob_size=blob_size(image.size),
            subscribers=subscribers,
        )
        if budget is None:
            budget = TransferBudget.from_config(config, bandwidth=bandwidth)
        else:
            budget.check(config)
        self.bandwidth = budget.bandwidth
        self.pool = budget.pool
        self.slots = budget.slots_for()
        self.link = budget.link
        self.accounting.slots = budget.slots
        self.planner = RequestPlanner(
            budget.link,
            floor=config.merge_gap,
            ceiling=config.chunk_size,
            in_flight=lambda: budget.limit,
        )
        self.resume = resume
        self.journal: Journal | None = None
        renew = getattr(sink, "renew", None)
        self._renew: Callable[[AuthenticationExpired], Awaitable[bool]] | None = renew

    async def run(self) -> TransferResult:
        accounting = self.accounting
        accounting.start()
        done: list[Range] = []
        if self.resume is None:
            await self.sink.prepare(accounting.blob_size)
        else:
            journal = await open_journal(
                self.image, self.sink, self.resume, accounting.blob_size, self.virtual_size
            )
            self.journal, done = journal, journal.done
            if journal.complete:
                await anyio.to_thread.run_sync(journal.close)
                accounting.resumed(0, accounting.blob_size)
                return TransferResult(accounting.finish(), self.sink.description)
        try:
            return await self._run(done)
        finally:
            if self.journal is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self.journal.close)

    async def _run(self, done: list[Range]) -> TransferResult:
        accounting = self.accounting
        extents = await anyio.to_thread.run_sync(self.image.data_extents)
        if done:
            for start, end in done:
                accounting.resumed(start, end - start)
            extents = subtract_ranges(extents, done, self.virtual_size)
        gaps = _Gaps(done)
        holes = _Gaps(done)  # a hole is read only if nothing of it was resumed

        def join(start: int, end: int) -> bool:
            return end - start < self.planner.gaps().hole and holes.free(start, end) == end - start

        windows = read_windows(
            extents, virtual_size=self.virtual_size, chunk_size=self.config.chunk_size, join=join
        )
        position = 0
        journal = self.journal
        try:
            async with anyio.create_task_group() as tasks:
                syncer = anyio.CancelScope()
                if journal is not None:
                    tasks.start_soon(self._sync_journal, journal, syncer)
                for window in windows:
                    accounting.skipped(position, gaps.free(position, window.offset))
                    position = window.end
                    # The slot comes before the read, so at most `concurrency` chunks are
                    # held in memory however fast the disk reads.
                    await self.slots.acquire()
                    tasks.start_soon(self._transfer_window, window)
                accounting.skipped(position, gaps.free(position, self.virtual_size))
                syncer.cancel()
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        footer = fixed_vhd_footer(self.virtual_size)
        view = memoryview(footer)
        await self.slots.acquire()
        try:
            await self._send(self.virtual_size, view, self.sink.digest(view))
        finally:
            self.slots.release()
        assert len(footer) == FOOTER_SIZE
        await release_lease(self.sink)  # before the journal says done: see resume.py
        if journal is not None:
            await anyio.to_thread.run_sync(journal.mark_complete, accounting.blob_size)
        return TransferResult(accounting.finish(), self.sink.description)

    async def _sync_journal(self, journal: Journal, scope: anyio.CancelScope) -> None:
        """fsync the journal now and then, off the loop (records survive a kill anyway;
        this bounds what a power loss forgets)."""
        assert self.resume is not None
        with scope:
            while True:
                await anyio.sleep(self.resume.sync_interval)
                await anyio.to_thread.run_sync(journal.sync)

    async def _transfer_window(self, window: Window) -> None:
        try:
            buffer = self.pool.take()
            try:
                view = memoryview(buffer)[: window.length]
                gap = self.planner.gaps().inner
                got, pieces = await anyio.to_thread.run_sync(self._load, view, window.offset, gap)
                self.accounting.read(window.offset, got)
                cursor = window.offset
                for start, end, digest in pieces:
                    self.accounting.skipped(cursor, window.offset + start - cursor)
                    await self._send(window.offset + start, view[start:end], digest)
                    cursor = window.offset + end
                self.accounting.skipped(cursor, window.end - cursor)
                if self.journal is not None:
                    self.journal.record(window.offset, window.length)
            finally:
                self.pool.give(buffer)
        finally:
            self.slots.release()

    def _load(self, view: memoryview, offset: int, merge_gap: int) -> tuple[int, list[_Piece]]:
        """Worker thread: read, find what is not zero, digest it (GIL released by hashlib)."""
        got = self.image.read_into(view, offset)
        runs = nonzero_runs(view, self.config.zero_block, merge_gap)
        return got, [(start, end, self.sink.digest(view[start:end])) for start, end in runs]

    async def _send(self, offset: int, data: memoryview, digest: bytes | None) -> None:
        length = len(data)
        link = self.link
        started = 0.0

        async def attempt() -> None:
            nonlocal started
            if self.bandwidth is not None:
                await self.bandwidth.consume(length)
            started = link.now()
            await self.sink.write(offset, data, digest)
            link.acknowledged(started, length)

        def on_retry(error: SinkError) -> None:
            if error.status in THROTTLED:
                link.throttled(started)
                self.slots.throttled(error, started)
            self.accounting.retry(offset, length, str(error))

        renewals = 0
        while True:
            try:
                await call_with_retries(
                    attempt,
                    what=f"{self.sink.description}: bytes {offset}-{offset + length - 1}",
                    max_attempts=self.config.max_attempts,
                    base=self.config.backoff_base,
                    cap=self.config.backoff_max,
                    request_timeout=self.config.request_timeout,
                    on_retry=on_retry,
                )
                break
            except AuthenticationExpired as error:
                # An expired SAS (a managed disk's upload URL): grant access again, resend.
                if self._renew is None or renewals >= MAX_RENEWALS:
                    raise
                renewals += 1
                if not await self._renew(error):
                    raise
                self.accounting.retry(offset, length, f"credentials renewed after: {error}")
        self.accounting.written(offset, length)


def subtract_ranges(
    extents: Sequence[tuple[int, int]], done: Sequence[Range], limit: int
) -> list[tuple[int, int]]:
    """``(offset, length)`` data extents, widened to 512-byte boundaries and clipped to
    ``limit``, less the sorted, disjoint, 512-aligned ``(start, end)`` ranges of ``done``."""
    result: list[tuple[int, int]] = []
    index = 0
    for offset, length in extents:
        start = round_down(offset, SECTOR)
        end = min(round_up(offset + length, SECTOR), limit)
        while index < len(done) and done[index][1] <= start:
            index += 1
        probe = index
        while start < end:
            if probe >= len(done) or done[probe][0] >= end:
                result.append((start, end - start))
                break
            done_start, done_end = done[probe]
            if done_start > start:
                result.append((start, done_start - start))
            start = max(start, done_end)
            probe += 1
    return result


class _Gaps:
    """Bytes of a gap between windows that were skipped rather than resumed: the gap less
    what the journal recorded as done. Queried with increasing positions, so O(1) each."""

    __slots__ = ("_done", "_index")

    def __init__(self, done: list[Range]) -> None:
        self._done = done
        self._index = 0

    def free(self, start: int, end: int) -> int:
        length = end - start
        done = self._done
        if not done or length <= 0:
            return length
        index = self._index
        while index < len(done) and done[index][1] <= start:
            index += 1
        self._index = index
        while index < len(done) and done[index][0] < end:
            length -= min(end, done[index][1]) - max(start, done[index][0])
            index += 1
        return length
