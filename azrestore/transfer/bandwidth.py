"""A bandwidth budget (token bucket) that any number of transfers can share."""

from __future__ import annotations

import time

import anyio


class Bandwidth:
    """Caps bytes per second across everyone who calls :meth:`consume`.

    Debt-based: a caller takes its bytes at once and sleeps for the debt, so a request
    larger than one second's budget still goes through, and the average holds. Burst is
    at most ``burst`` bytes (default: one second's worth).
    """

    def __init__(self, rate: int, *, burst: int | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else rate
        self._tokens = float(self.burst)
        self._stamp = time.monotonic()
        self._lock = anyio.Lock()

    async def consume(self, nbytes: int) -> None:
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= nbytes
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
            # Sleep while holding the lock so that callers are served in order.
            if wait > 0:
                await anyio.sleep(wait)
