"""Retries with exponential backoff, full jitter and Retry-After, around one request."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from ..errors import SinkError, TransferError

T = TypeVar("T")


#: Statuses of throttling: the server says when to come back, and that is what we do.
THROTTLED = frozenset({429, 503})
#: A throttled answer with a Retry-After spends attempts of its own: this many times
#: ``max_attempts`` of them (the service is answering, and says when to come back).
THROTTLED_ATTEMPTS = 4


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None,
    throttled: bool = False,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1).

    A throttled answer (429, 503) with a Retry-After is waited for that long plus full
    jitter over ``retry_after * 2**(attempt-1)`` (capped at ``cap``, but never less than
    the Retry-After): Azure's targets are
    token buckets that say when a request will pass (often milliseconds), so the first
    retry comes within twice the Retry-After rather than after the backoff's ``base``;
    the jitter, growing with each attempt, spreads the requests that were throttled
    together so they do not all come back at once, and the concurrency controller backs
    the run off. Otherwise full jitter over ``base * 2**(attempt-1)`` capped at ``cap``, a
    server's Retry-After being a floor, never shortened by jitter.
    """
    if throttled and retry_after is not None:
        # The spread grows from the Retry-After, or from a millisecond where it says 0
        # (back-to-back retries would spend the throttle budget at once); the Retry-After
        # itself is a floor, even past ``cap``.
        spread = random.uniform(0, max(retry_after, 0.001) * 2 ** min(attempt - 1, 6))
        return max(retry_after, min(cap, retry_after + spread))
    ceiling = min(cap, base * 2 ** (attempt - 1))
    delay = random.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


async def call_with_retries(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    max_attempts: int,
    base: float,
    cap: float,
    request_timeout: float,
    on_retry: Callable[[SinkError], None] | None = None,
) -> T:
    """Await ``operation()`` until it succeeds, a fatal :class:`SinkError` stops it, or
    ``max_attempts`` is spent (throttled answers with a Retry-After spend
    :data:`THROTTLED_ATTEMPTS` times as many of their own). A request over
    ``request_timeout`` seconds counts as a retryable failure. Raises
    :class:`TransferError` naming ``what`` when retries run out."""
    attempt = throttles = 0
    while True:
        attempt += 1
        try:
            with anyio.fail_after(request_timeout):
                return await operation()
        except TimeoutError:
            error = SinkError(f"no answer within {request_timeout:g} s", retryable=True)
        except SinkError as exc:
            if not exc.retryable:
                raise
            error = exc
        if error.status in THROTTLED and error.retry_after is not None:
            # A throttled answer says when to come back: it spends a budget of its own.
            throttles += 1
            attempt -= 1
            if throttles >= THROTTLED_ATTEMPTS * max_attempts:
                raise TransferError(
                    f"{what}: still throttled after {throttles} attempts: {error}"
                ) from error
        elif attempt >= max_attempts:
            raise TransferError(f"{what}: failed after {attempt} attempts: {error}") from error
        if on_retry is not None:
            on_retry(error)
        throttled = error.status in THROTTLED and error.retry_after is not None
        delay = backoff_delay(
            throttles if throttled else attempt,
            base=base,
            cap=cap,
            retry_after=error.retry_after,
            throttled=throttled,
        )
        await anyio.sleep(delay)
