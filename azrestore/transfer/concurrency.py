"""How many requests a run keeps in flight: fixed (``--concurrency N``), or found from the
link as the upload goes (the default).

The rule, with no ``--concurrency``:

- Start at :data:`START` requests in flight. Every window of measurements (at least as
  many requests as the limit, and at least two mean latencies) compare the bytes per
  second acknowledged with those measured before the last increase. While the limit is
  in use (a task waited for a slot) and throughput grew by :data:`GROWTH` or more, grow:
  double at first (slow start), then by a quarter. When it first stops growing, come
  back to what fills the link (bytes per second times the least latency seen, in
  requests, plus a quarter: :data:`KNEE_SPARE`) and hold there; a later step that buys
  nothing is taken back. After :data:`PROBE_AFTER` flat windows, probe a step up again.
- Rising latency: a window whose mean latency is over :data:`LATENCY_RISE` times the
  least seen, without the throughput to show for it, shrinks the limit by
  :data:`LATENCY_DECREASE` (requests are queueing, not moving), down to :data:`START`.
- Throttling: a 503 ServerBusy for the account's targets ("over the account limit")
  shrinks the shared limit by :data:`THROTTLE_DECREASE`, at most once per round trip.
  A 503 or 429 of one blob's targets shrinks only that disk's own cap (halved, grown back
  by one per cap acknowledged chunks: AIMD), so a throttled blob backs off alone and the
  other disks keep their slots.
- Never above the ceiling (:data:`CEILING` by default; the buffer pool is sized for it and
  allocates lazily, so memory is at most the highest limit reached times the chunk size),
  never below 1.

With ``--concurrency N`` the limit is N throughout and no disk has a cap of its own, as
before. Fed and read on the event loop thread only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import SinkError
from .linkstats import LinkStats
from .slots import SlotLimiter

#: Requests in flight an automatic run starts with: the fixed default it replaces, which
#: measured best into Azurite on loopback (docs/benchmarks.md).
START = 16
#: Requests in flight an automatic run never goes beyond (chunk buffers: 32 x 4 MiB, so
#: that an upload stays under the benchmarks' 200 MiB peak RSS; 64 would not).
CEILING = 32
#: Throughput must grow by this factor for the limit to grow again.
GROWTH = 1.1
#: Mean latency over this many times the least seen counts as queueing.
LATENCY_RISE = 2.0
#: Factors the limit is multiplied by on rising latency and on the account's throttling.
LATENCY_DECREASE = 0.8
THROTTLE_DECREASE = 0.7
#: Requests in flight kept past the knee, over what the link holds.
KNEE_SPARE = 1.25
#: Flat windows at the knee before the limit is probed one step up again.
PROBE_AFTER = 8
#: Least seconds a window lasts.
MIN_WINDOW = 0.05


def account_wide(error: SinkError) -> bool:
    """True for a throttled answer about the account's targets, not one blob's."""
    return error.status == 503 and "account limit" in str(error)


@dataclass(frozen=True, slots=True)
class Decision:
    """One change of the limit: when, to what, and why (for statistics and tests)."""

    at: float
    limit: int
    reason: str


class ConcurrencyController:
    """Adjusts ``slots.limit`` from what ``link`` measures (see the module's rule).
    ``fixed`` keeps it where it is."""

    def __init__(
        self,
        slots: SlotLimiter,
        link: LinkStats,
        *,
        fixed: bool,
        ceiling: int = CEILING,
        on_limit: Callable[[int], None] | None = None,
    ) -> None:
        self.slots = slots
        self._on_limit = on_limit
        self.link = link
        self.fixed = fixed
        self.ceiling = max(ceiling, slots.limit)
        self.history: list[Decision] = []
        self.throttles = 0
        self._slow_start = True
        self._reference: float | None = None
        self._reference_limit = 1
        self._increased = False
        self._base_latency: float | None = None
        self._flat = 0
        self._last_decrease = -math.inf
        self._begin_window()

    @property
    def limit(self) -> int:
        return self.slots.limit

    def _begin_window(self) -> None:
        self._start = self.link.now()
        self._bytes = self.link.bytes
        self._requests = self.link.requests
        self._latency = self.link.latency_sum
        self.slots.saturated = self.slots.borrowed >= self.slots.limit

    def _set(self, limit: int, reason: str) -> None:
        limit = max(1, min(self.ceiling, limit))
        if limit != self.slots.limit:
            self.slots.limit = limit
            if self._on_limit is not None:
                self._on_limit(limit)
            self.history.append(Decision(self.link.now(), limit, reason))

    def throttled(self, started: float) -> None:
        """The account's targets throttled a request sent at ``started``."""
        self.throttles += 1
        if self.fixed or started < self._last_decrease:
            return
        self._last_decrease = self.link.now()
        self._slow_start = self._increased = False
        self._reference = None
        self._flat = 0
        self._reference_limit = max(1, math.floor(self.slots.limit * THROTTLE_DECREASE))
        self._set(self._reference_limit, "throttled")
        self._begin_window()

    def tick(self) -> None:
        """A chunk was acknowledged: close the window if it is long enough, and decide."""
        if self.fixed:
            return
        requests = self.link.requests - self._requests
        if requests < max(4, self.slots.limit):
            return
        now = self.link.now()
        elapsed = now - self._start
        latency = (self.link.latency_sum - self._latency) / requests
        if elapsed < max(MIN_WINDOW, 2 * latency):
            return
        sent = self.link.bytes - self._bytes
        self._decide(sent / elapsed, latency, sent / requests, self.slots.saturated)
        self._begin_window()

    def _decide(self, throughput: float, latency: float, size: float, saturated: bool) -> None:
        if self._base_latency is None or latency < self._base_latency:
            self._base_latency = latency
        reference = self._reference
        grew = reference is None or throughput >= reference * GROWTH
        limit = self.slots.limit
        if self._slow_start and saturated and not grew:
            # Past the knee: as many requests as fill the link (throughput times the least
            # latency, in requests: Little's law), with a quarter to spare.
            self._slow_start = self._increased = False
            needed = math.ceil(KNEE_SPARE * throughput * self._base_latency / max(size, 1))
            self._set(min(limit, max(self._reference_limit, needed)), "knee")
        elif latency > LATENCY_RISE * self._base_latency and not grew and limit > START:
            # Not below the start: on a loaded machine latency also rises with the number
            # of disks running, whatever the limit; only the account's 503s go lower.
            self._slow_start = self._increased = False
            self._reference = throughput
            self._reference_limit = max(START, math.floor(limit * LATENCY_DECREASE))
            self._set(self._reference_limit, "latency")
        elif not saturated:
            return  # the uploads do not use what they have: nothing to learn
        elif grew:
            self._reference = throughput
            self._reference_limit = limit
            self._flat = 0
            step = limit if self._slow_start else max(1, limit // 4)
            self._set(limit + step, "grew")
            self._increased = True
        elif self._increased:
            # The last step bought nothing: back to where it was.
            self._increased = False
            self._set(self._reference_limit, "flat")
        else:
            self._flat += 1
            if self._flat >= PROBE_AFTER:
                self._flat = 0
                self._reference = throughput
                self._reference_limit = limit
                self._increased = True
                self._set(limit + max(1, limit // 4), "probe")


class DiskSlots:
    """One disk's way to the shared slots: its own cap (backed off on its blob's
    throttling, automatic mode only), then a shared slot."""

    __slots__ = ("_cap", "_last_decrease", "controller", "own", "shared")

    def __init__(self, controller: ConcurrencyController) -> None:
        self.controller = controller
        self.shared = controller.slots
        self.own = None if controller.fixed else SlotLimiter(controller.ceiling)
        self._cap = float(controller.ceiling)
        self._last_decrease = -math.inf

    async def acquire(self) -> None:
        if self.own is None:
            await self.shared.acquire()
            return
        await self.own.acquire()
        try:
            await self.shared.acquire()
        except BaseException:
            self.own.release()
            raise

    def release(self) -> None:
        self.shared.release()
        own = self.own
        if own is not None:
            own.release()
            if self._cap < self.controller.ceiling:
                self._cap = min(self.controller.ceiling, self._cap + 1 / self._cap)
                own.limit = int(self._cap)
        self.controller.tick()

    def throttled(self, error: SinkError, started: float) -> None:
        """A request of this disk sent at ``started`` was answered 503 or 429."""
        if account_wide(error):
            self.controller.throttled(started)
            return
        own = self.own
        if own is None or started < self._last_decrease:
            return
        self._last_decrease = self.controller.link.now()
        self._cap = max(1.0, min(self._cap, own.borrowed) / 2)
        own.limit = int(self._cap)

    @property
    def cap(self) -> int | None:
        """This disk's own cap on requests in flight (None: fixed concurrency)."""
        return None if self.own is None else self.own.limit
