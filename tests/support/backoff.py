"""Retry backoff timings for tests, short so that retried requests do not slow the run."""

from typing import TypedDict


class BackoffTimes(TypedDict):
    """``TransferConfig``'s backoff keywords, typed so that ``TransferConfig(**times)`` checks."""

    backoff_base: float
    backoff_max: float
