"""The upload pipeline: a raw disk streamed into a :class:`PageSink` as a fixed VHD.

Per chunk: take a concurrency slot, *then* a pooled buffer, read the window with preadv,
find its non-zero runs and compute their digests, all in one worker-thread call; then
send each run as a Put Page (with retries) on the event loop. Memory in use is at most
``concurrency`` buffers of ``chunk_size`` bytes, whatever the disk's size. Holes are never
read; all-zero blocks are never sent; the VHD footer is written last.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import anyio
import anyio.to_thread

from ..errors import SinkError
from ..formats.sizes import FOOTER_SIZE, blob_size, virtual_size
from ..formats.vhd import fixed_vhd_footer
from ..formats.zeros import nonzero_runs
from ..sources.raw import BufferPool, RawImage, open_raw_image
from .bandwidth import Bandwidth
from .config import TransferConfig
from .plan import Window, plan_windows
from .progress import Accounting, ProgressCallback, TransferResult
from .retry import call_with_retries
from .sink import PageSink

#: (start, end, digest) of one request inside a chunk buffer
_Piece = tuple[int, int, bytes | None]


async def upload_disk(
    source: RawImage | str | os.PathLike[str],
    sink: PageSink,
    *,
    config: TransferConfig | None = None,
    on_progress: ProgressCallback | Sequence[ProgressCallback] | None = None,
    bandwidth: Bandwidth | None = None,
) -> TransferResult:
    """Upload a raw disk image to ``sink`` as a fixed VHD and return what was moved.

    ``source`` is an open :class:`RawImage` (left open) or a path (opened, checked and
    closed here). ``on_progress`` callbacks receive :class:`ProgressEvent`s on the event
    loop thread. ``bandwidth`` may be shared between concurrent uploads; by default one is
    made from ``config.max_bandwidth``. Works under asyncio, uvloop and anyio.
    """
    config = config or TransferConfig()
    if isinstance(source, RawImage):
        return await _Upload(source, sink, config, on_progress, bandwidth).run()
    image = await open_raw_image(source)
    try:
        return await _Upload(image, sink, config, on_progress, bandwidth).run()
    finally:
        image.close()


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that stopped a task group (its siblings were then cancelled): callers get
    one azrestore error rather than a group."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


class _Upload:
    def __init__(
        self,
        image: RawImage,
        sink: PageSink,
        config: TransferConfig,
        on_progress: ProgressCallback | Sequence[ProgressCallback] | None,
        bandwidth: Bandwidth | None,
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
        if bandwidth is None and config.max_bandwidth is not None:
            bandwidth = Bandwidth(config.max_bandwidth)
        self.bandwidth = bandwidth
        self.pool = BufferPool(config.concurrency, config.chunk_size)
        self.slots = anyio.Semaphore(config.concurrency)

    async def run(self) -> TransferResult:
        accounting = self.accounting
        accounting.start()
        await self.sink.prepare(accounting.blob_size)
        extents = await anyio.to_thread.run_sync(self.image.data_extents)
        windows = plan_windows(
            extents, virtual_size=self.virtual_size, chunk_size=self.config.chunk_size
        )
        position = 0
        try:
            async with anyio.create_task_group() as tasks:
                for window in windows:
                    accounting.skipped(position, window.offset - position)
                    position = window.end
                    # The slot comes before the read, so at most `concurrency` chunks are
                    # held in memory however fast the disk reads.
                    await self.slots.acquire()
                    tasks.start_soon(self._transfer_window, window)
                accounting.skipped(position, self.virtual_size - position)
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        footer = fixed_vhd_footer(self.virtual_size)
        view = memoryview(footer)
        await self._send(self.virtual_size, view, self.sink.digest(view))
        assert len(footer) == FOOTER_SIZE
        return TransferResult(accounting.finish(), self.sink.description)

    async def _transfer_window(self, window: Window) -> None:
        try:
            buffer = self.pool.take()
            try:
                view = memoryview(buffer)[: window.length]
                got, pieces = await anyio.to_thread.run_sync(self._load, view, window.offset)
                self.accounting.read(window.offset, got)
                cursor = window.offset
                for start, end, digest in pieces:
                    self.accounting.skipped(cursor, window.offset + start - cursor)
                    await self._send(window.offset + start, view[start:end], digest)
                    cursor = window.offset + end
                self.accounting.skipped(cursor, window.end - cursor)
            finally:
                self.pool.give(buffer)
        finally:
            self.slots.release()

    def _load(self, view: memoryview, offset: int) -> tuple[int, list[_Piece]]:
        """Worker thread: read, find what is not zero, digest it (GIL released by hashlib)."""
        got = self.image.read_into(view, offset)
        runs = nonzero_runs(view, self.config.zero_block, self.config.merge_gap)
        return got, [(start, end, self.sink.digest(view[start:end])) for start, end in runs]

    async def _send(self, offset: int, data: memoryview, digest: bytes | None) -> None:
        length = len(data)

        async def attempt() -> None:
            if self.bandwidth is not None:
                await self.bandwidth.consume(length)
            await self.sink.write(offset, data, digest)

        def on_retry(error: SinkError) -> None:
            self.accounting.retry(offset, length, str(error))

        await call_with_retries(
            attempt,
            what=f"{self.sink.description}: bytes {offset}-{offset + length - 1}",
            max_attempts=self.config.max_attempts,
            base=self.config.backoff_base,
            cap=self.config.backoff_max,
            request_timeout=self.config.request_timeout,
            on_retry=on_retry,
        )
        self.accounting.written(offset, length)
