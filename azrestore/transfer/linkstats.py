"""What the uploads sharing one budget measure of their link as they go: each request's
latency and size, and each throttled answer (503 ServerBusy, 429), over a sliding window
of the most recent requests, so that the request planner and the concurrency controller
decide from the link they are on, not from constants tuned on loopback.

Estimates (None until enough requests are seen):
- ``round_trip`` and ``seconds_per_byte``: a request's latency as a line against its
  size, fitted over the window;
- ``throughput``: bytes acknowledged per second over the window (all requests together);
- ``request_rate``: requests acknowledged per second over the window;
- ``throttled_share``: throttled answers per request tried over the window.

Not thread-safe: fed and read on the event loop thread.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

#: Requests kept in the window.
WINDOW = 256
#: Requests seen before any estimate is given.
MIN_SAMPLES = 8


@dataclass(frozen=True, slots=True)
class _Sample:
    done: float  # clock when acknowledged (or throttled)
    latency: float  # seconds from send to answer
    size: int  # bytes sent (0 for a throttled answer)
    throttled: bool


class LinkStats:
    """A sliding window of request outcomes, with estimates of the link derived from it."""

    def __init__(
        self, *, window: int = WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._samples: deque[_Sample] = deque(maxlen=window)
        self._clock = clock
        self.requests = 0
        self.throttles = 0
        self.bytes = 0
        #: Seconds of latency of every acknowledged request, summed (windows of the
        #: concurrency controller take differences of these counters).
        self.latency_sum = 0.0

    def now(self) -> float:
        """The clock the caller stamps a request's start with."""
        return self._clock()

    def acknowledged(self, started: float, size: int) -> None:
        """A request of ``size`` bytes sent at ``started`` (``now()``) was acknowledged."""
        done = self._clock()
        latency = max(0.0, done - started)
        self._samples.append(_Sample(done, latency, size, False))
        self.requests += 1
        self.bytes += size
        self.latency_sum += latency

    def throttled(self, started: float) -> None:
        """A request sent at ``started`` was answered 503 ServerBusy or 429."""
        done = self._clock()
        self._samples.append(_Sample(done, max(0.0, done - started), 0, True))
        self.throttles += 1

    def _acknowledged(self) -> list[_Sample]:
        return [sample for sample in self._samples if not sample.throttled]

    @property
    def throughput(self) -> float | None:
        """Bytes per second acknowledged over the window."""
        span = self._span()
        if span is None:
            return None
        return sum(sample.size for sample in self._samples) / span

    @property
    def request_rate(self) -> float | None:
        """Requests per second acknowledged over the window."""
        span = self._span()
        if span is None:
            return None
        return len(self._acknowledged()) / span

    @property
    def throttled_share(self) -> float | None:
        """Throttled answers per request answered, over the window."""
        if len(self._samples) < MIN_SAMPLES:
            return None
        return sum(sample.throttled for sample in self._samples) / len(self._samples)

    @property
    def round_trip(self) -> float | None:
        """Seconds a request costs whatever its size: the intercept of a least-squares
        line of acknowledged requests' latency against their size (``latency = round_trip
        + size * seconds_per_byte``); where the sizes hardly vary, the 10th percentile of
        the latencies (then an upper bound)."""
        fitted = self._latency_line()
        return None if fitted is None else fitted[0]

    @property
    def seconds_per_byte(self) -> float | None:
        """What one more byte adds to one request's latency (the line's slope); None where
        the sizes hardly vary."""
        fitted = self._latency_line()
        return None if fitted is None else fitted[1]

    def _latency_line(self) -> tuple[float, float | None] | None:
        samples = self._acknowledged()
        if len(samples) < MIN_SAMPLES:
            return None
        count = len(samples)
        mean_size = sum(s.size for s in samples) / count
        mean_latency = sum(s.latency for s in samples) / count
        spread = sum((s.size - mean_size) ** 2 for s in samples)
        if mean_size <= 0 or spread / count < (0.1 * mean_size) ** 2:
            latencies = sorted(s.latency for s in samples)
            return latencies[count // 10], None
        slope = sum((s.size - mean_size) * (s.latency - mean_latency) for s in samples) / spread
        slope = max(0.0, slope)
        return max(0.0, mean_latency - slope * mean_size), slope

    def _span(self) -> float | None:
        """Seconds the window covers: from the first answer's send to the last answer."""
        if len(self._samples) < MIN_SAMPLES:
            return None
        first = self._samples[0]
        span = self._samples[-1].done - (first.done - first.latency)
        return span if span > 0 else None
