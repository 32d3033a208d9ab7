"""Request slots whose number can change while they are in use: a FIFO limiter in anyio's
manner (``acquire``/``release``/``statistics``) with an adjustable ``limit``.

Slots are handed over first come, first served, directly from the releasing task to the
longest waiter, so a limiter shared by several disks' pipelines is round robin among them
(see :mod:`azrestore.transfer.budget`). Lowering the limit below what is borrowed takes
nothing back: releases are simply not handed on until fewer than ``limit`` are borrowed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import anyio
import anyio.lowlevel

from ..errors import InputError


@dataclass(frozen=True, slots=True)
class SlotStatistics:
    """A snapshot: the limit, slots borrowed, tasks waiting, most ever borrowed at once."""

    limit: int
    borrowed: int
    waiting: int
    peak: int


class SlotLimiter:
    """At most ``limit`` slots out at once; ``limit`` may be changed at any time."""

    __slots__ = ("_borrowed", "_limit", "_waiters", "peak", "saturated")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise InputError(f"concurrency must be at least 1, not {limit}")
        self._limit = limit
        self._borrowed = 0
        self._waiters: deque[anyio.Event] = deque()
        self.peak = 0
        #: Set whenever a task had to wait or every slot was out; the concurrency
        #: controller clears it when it starts a window of measurements.
        self.saturated = False

    @property
    def limit(self) -> int:
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        if value < 1:
            raise InputError(f"concurrency must be at least 1, not {value}")
        self._limit = value
        self._hand_over()

    @property
    def borrowed(self) -> int:
        return self._borrowed

    def _take(self) -> None:
        self._borrowed += 1
        if self._borrowed > self.peak:
            self.peak = self._borrowed
        if self._borrowed >= self._limit:
            self.saturated = True

    async def acquire(self) -> None:
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self._borrowed < self._limit and not self._waiters:
            self._take()
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return
        self.saturated = True
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():  # handed over just as we were cancelled: pass it on
                self.release()
            else:
                self._waiters.remove(event)
            raise

    def release(self) -> None:
        if self._borrowed <= 0:
            raise RuntimeError("release() without acquire()")
        self._borrowed -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        while self._waiters and self._borrowed < self._limit:
            self._take()
            self._waiters.popleft().set()

    def statistics(self) -> SlotStatistics:
        return SlotStatistics(self._limit, self._borrowed, len(self._waiters), self.peak)
