"""One budget for all the disks of a run: request slots, chunk buffers and bandwidth.

Every chunk (and every footer) of every disk takes a slot before its buffer and gives it
back when its requests are acknowledged, so a run holds at most ``limit`` requests in
flight and ``limit`` chunk buffers, whatever the number of disks. The limit is the fixed
``concurrency`` given, or (``concurrency=None``) found from the link by a
:class:`~azrestore.transfer.concurrency.ConcurrencyController`, never above ``ceiling``.

Fairness: slots are handed over first come, first served (anyio's semaphore wakes its
waiters in order and hands the slot over directly). Each disk's pipeline waits for one
slot at a time, so the waiting queue holds at most one entry per disk, and FIFO becomes
round robin: a disk that just got a slot queues behind every other waiting disk. A small
disk is not starved by a large one, and no disk keeps the connection pool to itself while
others wait; a disk alone gets every slot. With automatic concurrency each disk also has
a cap of its own, lowered only by its own blob's throttling, taken before the shared
slot: a throttled disk waits on its cap without holding shared slots the others could use.
"""

from __future__ import annotations

from ..errors import InputError
from .bandwidth import Bandwidth
from .concurrency import CEILING, START, ConcurrencyController, DiskSlots
from .config import TransferConfig
from .linkstats import LinkStats
from .slots import SlotLimiter


class SharedBufferPool:
    """Reusable chunk buffers of ``size`` bytes, at most ``count`` of them ever allocated.

    Callers hold a slot of the same budget while they hold a buffer, so :meth:`take` never
    has to wait. ``in_use`` and ``peak`` are kept for tests and benchmarks.
    """

    __slots__ = ("_allocated", "_free", "count", "in_use", "keep", "peak", "size")

    def __init__(self, count: int, size: int) -> None:
        self.count = count
        self.size = size
        self._free: list[bytearray] = []
        self._allocated = 0
        self.in_use = 0
        self.peak = 0
        #: Buffers kept for reuse at most (the current limit on slots); those given back
        #: beyond it are freed.
        self.keep = count

    @property
    def allocated(self) -> int:
        """Buffers allocated so far (never more than ``count``)."""
        return self._allocated

    def take(self) -> bytearray:
        self.in_use += 1
        if self.in_use > self.peak:
            self.peak = self.in_use
        if self._free:
            return self._free.pop()
        if self._allocated >= self.count:
            self.in_use -= 1
            raise RuntimeError("buffer pool exhausted: more buffers taken than slots")
        self._allocated += 1
        return bytearray(self.size)

    def give(self, buffer: bytearray) -> None:
        self.in_use -= 1
        if self._allocated > self.keep:
            self._allocated -= 1
        else:
            self._free.append(buffer)


class TransferBudget:
    """Slots, buffers and bandwidth shared by any number of concurrent transfers.

    Give the same budget to several :func:`~azrestore.transfer.pipeline.upload_disk` calls
    (or to :func:`~azrestore.transfer.scheduler.upload_many`) and together they keep to
    ``concurrency`` requests in flight (``None``: found from the link, from ``start`` up
    to ``ceiling``), as many chunk buffers of ``chunk_size`` bytes and ``max_bandwidth``
    bytes per second (or the ``bandwidth`` given). Each transfer's chunk size must be at
    most the budget's. Create it inside the event loop that uses it.
    """

    def __init__(
        self,
        concurrency: int | None,
        chunk_size: int,
        *,
        max_bandwidth: int | None = None,
        bandwidth: Bandwidth | None = None,
        ceiling: int = CEILING,
        start: int = START,
        link: LinkStats | None = None,
    ) -> None:
        if concurrency is not None and concurrency < 1:
            raise InputError(f"concurrency must be at least 1, not {concurrency}")
        if ceiling < 1:
            raise InputError(f"max concurrency must be at least 1, not {ceiling}")
        self.concurrency = concurrency
        self.ceiling = ceiling if concurrency is None else concurrency
        self.chunk_size = chunk_size
        #: What the transfers sharing this budget measure of their link.
        self.link = link or LinkStats()
        #: The shared request slots (their ``limit`` is the current in-flight limit).
        self.slots = SlotLimiter(min(start, self.ceiling) if concurrency is None else concurrency)
        self.pool = SharedBufferPool(self.ceiling, chunk_size)
        self.pool.keep = self.slots.limit
        self.controller = ConcurrencyController(
            self.slots,
            self.link,
            fixed=concurrency is not None,
            ceiling=self.ceiling,
            on_limit=self._limit_changed,
        )
        if bandwidth is None and max_bandwidth is not None:
            bandwidth = Bandwidth(max_bandwidth)
        self.bandwidth = bandwidth

    @classmethod
    def from_config(
        cls, config: TransferConfig, *, bandwidth: Bandwidth | None = None
    ) -> TransferBudget:
        """The budget ``config`` describes (its concurrency, chunk size and bandwidth)."""
        return cls(
            config.concurrency,
            config.chunk_size,
            max_bandwidth=config.max_bandwidth,
            bandwidth=bandwidth,
            ceiling=config.max_concurrency,
        )

    def _limit_changed(self, limit: int) -> None:
        self.pool.keep = limit

    def slots_for(self) -> DiskSlots:
        """The slots one disk's transfer takes (the shared ones, behind its own cap)."""
        return DiskSlots(self.controller)

    @property
    def limit(self) -> int:
        """Requests in flight allowed now."""
        return self.slots.limit

    def check(self, config: TransferConfig) -> None:
        """Raise :class:`InputError` if ``config``'s chunks do not fit this budget's buffers."""
        if config.chunk_size > self.chunk_size:
            raise InputError(
                f"chunk size {config.chunk_size} is larger than the shared budget's"
                f" buffers ({self.chunk_size})"
            )

    @property
    def memory(self) -> int:
        """Bytes of chunk buffers this budget may hold at most (the ceiling's worth)."""
        return self.ceiling * self.chunk_size
