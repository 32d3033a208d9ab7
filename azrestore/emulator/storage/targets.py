"""Azure's scalability targets per blob and per account: requests per second and bytes per
second, each a token bucket; a request beyond them is throttled (the gateway answers 503
ServerBusy with Retry-After, as Azure does).

The figures are Azure's published ones, as /work/shared/AZURE-FACTS.md records them:

- one standard page blob: "about 60 MiB/s and 500 requests/s on a standard account";
- a standard account (large regions): "about 60 Gbps ingress and 40,000 requests/s";
- premium: "Premium page blobs and managed disks follow their tier's limits", and a direct
  upload into a managed disk "runs at the throughput of the Standard HDD size that matches
  the upload size (... up to about 500 MiB/s for S70)": the premium preset takes that top
  figure, 500 MiB/s per blob. Its 2,000 requests/s per blob (S70's published IOPS) and
  the premium account's 50 Gbit/s (Microsoft's target for a premium page blob account,
  ingress and egress together) are not in AZURE-FACTS; ``requests=``/``bytes=`` set others.

Each bucket holds ``burst`` seconds of its rate and starts full. A request costs one token
of the request buckets and its body's bytes of the byte buckets (at most a full bucket, so
a body larger than the burst still passes when the bucket is full). It is admitted only
when every bucket it draws on has its cost, and then takes from all; otherwise it takes
nothing and waits the longest of the buckets' times to refill (its Retry-After).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from azrestore.emulator.storage.units import (
    format_rate,
    parse_byte_rate,
    parse_duration,
    parse_items,
    parse_request_rate,
)
from azrestore.errors import InputError

__all__ = [
    "ACCOUNT_PRESETS",
    "BLOB_PRESETS",
    "TargetCounters",
    "TargetGuard",
    "Targets",
    "Throttle",
    "TokenBucket",
]

_MiB: Final = 1024 * 1024
_GBIT: Final = 1000**3 / 8
_KEYS: Final = ("requests", "bytes", "burst")


@dataclass(frozen=True)
class Targets:
    """At most ``requests`` requests and ``bytes`` body bytes per second (None: no target),
    with bursts of up to ``burst`` seconds' worth."""

    requests: float | None = None
    bytes: float | None = None
    burst: float = 1.0

    def __post_init__(self) -> None:
        for name in ("requests", "bytes"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, not {value!r}")
        if not 0 < self.burst <= 3600:
            raise ValueError(f"burst must be between 0 and an hour, not {self.burst!r}")

    @property
    def active(self) -> bool:
        """Whether any target applies."""
        return self.requests is not None or self.bytes is not None

    @classmethod
    def parse(cls, text: str, presets: Mapping[str, Targets]) -> Targets:
        """Parse a preset name (``standard``, ``premium``, ``none``), ``key=value`` items of
        ``requests=500/s``, ``bytes=60MiB/s``, ``burst=1s``, or a preset followed by items
        that change it (``standard,requests=100/s``).

        Raises :class:`~azrestore.errors.InputError` (one line naming the spec) when malformed.
        """
        items = [item.strip() for item in text.split(",")]
        base = cls()
        if items and "=" not in items[0]:
            name = items.pop(0).lower()
            if name not in presets:
                raise InputError(
                    f"targets {text!r}: unknown preset {name!r} (one of {', '.join(presets)},"
                    " or requests=N/s,bytes=RATE)"
                )
            base = presets[name]
        parsers: dict[str, Callable[[str], float]] = {
            "requests": parse_request_rate,
            "bytes": parse_byte_rate,
            "burst": parse_duration,
        }
        try:
            changes = parse_items(
                items,
                parsers,
                expected=f"a preset or key=value items of {', '.join(_KEYS)}"
                " (e.g. requests=500/s,bytes=60MiB/s)",
            )
        except ValueError as exc:
            raise InputError(f"targets {text!r}: {exc}") from None
        try:
            return replace(base, **changes)
        except ValueError as exc:
            raise InputError(f"targets {text!r}: {exc}") from None

    def describe(self) -> str:
        """The targets in words."""
        if not self.active:
            return "none"
        parts = []
        if self.requests is not None:
            parts.append(f"{self.requests:g} requests/s")
        if self.bytes is not None:
            parts.append(format_rate(self.bytes))
        return ", ".join(parts)


#: Per-blob presets (see the module's docstring for where the figures come from).
BLOB_PRESETS: Final[Mapping[str, Targets]] = {
    "standard": Targets(requests=500, bytes=60 * _MiB),
    "premium": Targets(requests=2000, bytes=500 * _MiB),
    "none": Targets(),
}
#: Per-account presets.
ACCOUNT_PRESETS: Final[Mapping[str, Targets]] = {
    "standard": Targets(requests=40_000, bytes=60 * _GBIT),
    "premium": Targets(requests=40_000, bytes=50 * _GBIT),
    "none": Targets(),
}


class TokenBucket:
    """``rate`` tokens a second, up to ``capacity``; full at ``now``."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.level = capacity
        self._updated = now

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self.level = min(self.capacity, self.level + (now - self._updated) * self.rate)
            self._updated = now

    def cost(self, amount: float) -> float:
        """What ``amount`` takes from the bucket: at most all of it."""
        return min(amount, self.capacity)

    def wait(self, amount: float, now: float) -> float:
        """Seconds from ``now`` until the bucket holds the cost of ``amount`` (0: it does)."""
        self._refill(now)
        missing = self.cost(amount) - self.level
        return missing / self.rate if missing > 0 else 0.0

    def take(self, amount: float, now: float) -> None:
        """Take the cost of ``amount`` (the caller checked :meth:`wait` first)."""
        self._refill(now)
        self.level -= self.cost(amount)


Scope = Literal["blob", "account"]
Measure = Literal["requests", "bytes"]


@dataclass(frozen=True)
class Throttle:
    """A request refused: the target it is over and how long until it would pass."""

    scope: Scope
    measure: Measure
    retry_after: float

    @property
    def key(self) -> str:
        """``blob-requests``, ``account-bytes``, ...: the statistics' name of the target."""
        return f"{self.scope}-{self.measure}"


@dataclass
class TargetCounters:
    """Requests admitted per blob, and throttled per target (:attr:`Throttle.key`) and per
    blob (those throttled by the blob's own targets)."""

    admitted: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    throttled_blobs: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        """Zero every counter."""
        for counter in (self.admitted, self.throttled, self.throttled_blobs):
            counter.clear()


class TargetGuard:
    """Per-blob and per-account targets at work, on ``clock`` (seconds)."""

    def __init__(
        self,
        blob: Targets,
        account: Targets,
        counters: TargetCounters,
        clock: Callable[[], float],
    ) -> None:
        self.blob = blob
        self.account = account
        self._counters = counters
        self._clock = clock
        self._account_buckets = self._buckets(account, clock())
        self._blob_buckets: dict[str, dict[Measure, TokenBucket]] = {}

    @property
    def active(self) -> bool:
        """Whether any target applies."""
        return self.blob.active or self.account.active

    @staticmethod
    def _buckets(targets: Targets, now: float) -> dict[Measure, TokenBucket]:
        buckets: dict[Measure, TokenBucket] = {}
        if targets.requests is not None:
            buckets["requests"] = TokenBucket(
                targets.requests, max(1.0, targets.requests * targets.burst), now
            )
        if targets.bytes is not None:
            buckets["bytes"] = TokenBucket(targets.bytes, targets.bytes * targets.burst, now)
        return buckets

    def admit(self, blob: str | None, body_bytes: int) -> Throttle | None:
        """Admit one request to ``blob`` (its path; None for the account's own requests)
        with a body of ``body_bytes``: None when it passes, else the :class:`Throttle`."""
        if not self.active:
            return None
        now = self._clock()
        draws: list[tuple[Scope, Measure, TokenBucket, float]] = []
        scopes: list[tuple[Scope, dict[Measure, TokenBucket]]] = []
        if blob is not None and self.blob.active:
            buckets = self._blob_buckets.get(blob)
            if buckets is None:
                buckets = self._blob_buckets[blob] = self._buckets(self.blob, now)
            scopes.append(("blob", buckets))
        scopes.append(("account", self._account_buckets))
        for scope, scope_buckets in scopes:
            for measure, bucket in scope_buckets.items():
                amount = 1.0 if measure == "requests" else float(body_bytes)
                if amount > 0:
                    draws.append((scope, measure, bucket, amount))
        worst: Throttle | None = None
        for scope, measure, bucket, amount in draws:
            wait = bucket.wait(amount, now)
            if wait > 0 and (worst is None or wait > worst.retry_after):
                worst = Throttle(scope, measure, wait)
        if worst is not None:
            self._counters.throttled[worst.key] += 1
            if worst.scope == "blob" and blob is not None:
                self._counters.throttled_blobs[blob] += 1
            return worst
        for _, _, bucket, amount in draws:
            bucket.take(amount, now)
        if blob is not None:
            self._counters.admitted[blob] += 1
        return None
