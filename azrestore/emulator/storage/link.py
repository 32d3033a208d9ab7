"""The network link between a client and the gateway: a round trip per request (with
jitter), and a bandwidth cap the whole link shares (:class:`LinkModel`, the spec; :class:`Link`,
what it does to each request, on a clock of its own so tests can drive it).

A real link costs every request a round trip, however small its body: a Put Page from an
office or another region to Azure pays tens of milliseconds (AZURE-FACTS: "A real link adds
a round trip to every request (tens of ms)"). On loopback into Azurite a request costs next
to nothing, so the link is what lets benchmarks and tests see that cost.

The cap is one queue for the whole link, in arrival order: a body of N bytes holds the link
for N / rate seconds after the bodies that came before it, so concurrent uploads share the
rate as they share a real link's. It paces request bodies (the upload direction).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from azrestore.emulator.storage.units import parse_byte_rate, parse_duration, parse_items
from azrestore.errors import InputError

__all__ = ["Link", "LinkCounters", "LinkModel"]

_KEYS: Final = ("rtt", "jitter", "rate", "seed")


@dataclass(frozen=True)
class LinkModel:
    """What the link costs a request: ``rtt`` seconds per request, plus or minus up to
    ``jitter`` seconds (uniform, drawn from ``random.Random(seed)`` so runs repeat), and at
    most ``rate`` bytes per second of request bodies over the whole link (None: no cap).
    The default costs nothing."""

    rtt: float = 0.0
    jitter: float = 0.0
    rate: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rtt < 3600:
            raise ValueError(f"rtt must be between 0 and an hour, not {self.rtt!r}")
        if not 0 <= self.jitter <= self.rtt:
            raise ValueError(f"jitter must be between 0 and the rtt ({self.rtt:g} s)")
        if self.rate is not None and not self.rate > 0:
            raise ValueError(f"rate must be positive, not {self.rate!r}")

    @property
    def active(self) -> bool:
        """Whether the link costs anything at all."""
        return self.rtt > 0 or self.rate is not None

    @classmethod
    def parse(cls, text: str) -> LinkModel:
        """Parse ``rtt=40ms[,jitter=5ms][,rate=1Gbit/s][,seed=N]``, or ``none``.

        Raises :class:`~azrestore.errors.InputError` (one line naming the spec) when malformed.
        """
        spec = text.strip()
        if spec.lower() in ("none", "off", ""):
            return cls()
        parsers: dict[str, Callable[[str], float]] = {
            "rtt": parse_duration,
            "jitter": parse_duration,
            "rate": parse_byte_rate,
            "seed": int,
        }
        try:
            values = parse_items(
                spec.split(","),
                parsers,
                expected=f"key=value items of {', '.join(_KEYS)} (e.g. rtt=40ms,rate=1Gbit/s)",
            )
        except ValueError as exc:
            raise InputError(f"link spec {text!r}: {exc}") from None
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InputError(f"link spec {text!r}: {exc}") from None

    def describe(self) -> str:
        """The model in words, as the spec would write it."""
        if not self.active:
            return "none"
        parts = [f"rtt={self.rtt * 1000:g}ms"]
        if self.jitter:
            parts.append(f"jitter={self.jitter * 1000:g}ms")
        if self.rate is not None:
            parts.append(f"rate={_bits(self.rate)}")
        return ",".join(parts)


@dataclass
class LinkCounters:
    """What the link did: requests it delayed, the round-trip seconds it added (jitter
    included), the body bytes it carried under its cap and the seconds they waited for it."""

    delayed: int = 0
    rtt_seconds: float = 0.0
    paced_bytes: int = 0
    pacing_seconds: float = 0.0

    def reset(self) -> None:
        """Zero every counter."""
        self.delayed = 0
        self.rtt_seconds = self.pacing_seconds = 0.0
        self.paced_bytes = 0


class Link:
    """A :class:`LinkModel` at work: :meth:`delay` says how long one request waits on it.

    ``clock`` gives seconds (``time.monotonic`` in the gateway, a fake in tests); the link
    itself never sleeps, so the gateway's loop is never blocked by it.
    """

    def __init__(
        self, model: LinkModel, counters: LinkCounters, clock: Callable[[], float]
    ) -> None:
        self.model = model
        self._counters = counters
        self._clock = clock
        self._random = random.Random(model.seed)
        self._free_at = 0.0  # when the capped link has carried every body reserved so far

    def delay(self, body_bytes: int) -> float:
        """Seconds the request waits before it reaches the service: its round trip (with
        jitter), and the time its ``body_bytes`` wait for and take on the capped link."""
        model = self.model
        if not model.active:
            return 0.0
        rtt = model.rtt
        if model.jitter:
            rtt = max(0.0, rtt + self._random.uniform(-model.jitter, model.jitter))
        pacing = 0.0
        if model.rate is not None and body_bytes > 0:
            now = self._clock()
            self._free_at = max(self._free_at, now) + body_bytes / model.rate
            pacing = self._free_at - now
            self._counters.paced_bytes += body_bytes
            self._counters.pacing_seconds += pacing
        self._counters.delayed += 1
        self._counters.rtt_seconds += rtt
        return rtt + pacing


def _bits(rate: float) -> str:
    """A byte rate as links are written: ``1Gbit/s``, ``250Mbit/s``."""
    bits = rate * 8
    for unit, factor in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if bits >= factor:
            return f"{bits / factor:.12g}{unit}bit/s"
    return f"{bits:.12g}bit/s"
