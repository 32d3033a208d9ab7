"""Durations and rates as the link model's specs write them (``40ms``, ``1Gbit/s``,
``60MiB/s``, ``500/s``), parsed into seconds, bytes per second and requests per second.

Pure: the parsers raise :class:`ValueError` with a message that names the text; the specs
(:mod:`.link`, :mod:`.targets`) turn it into one line of :class:`~azrestore.errors.InputError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Final, TypeVar

T = TypeVar("T")

__all__ = ["format_rate", "parse_byte_rate", "parse_duration", "parse_request_rate"]

_NUMBER: Final = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_PATTERN: Final = re.compile(rf"^\s*({_NUMBER})\s*([a-zA-Zµ]*)\s*(/\s*s)?\s*$")

_DURATIONS: Final = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
# Bytes per second of each unit, matched case-insensitively but for the B of bytes: bits are
# spelt out (bit, bps), and "Mb" is refused rather than read either way.
_BYTE_RATES: Final = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "bit": 1 / 8,
    "kbit": 1000 / 8,
    "mbit": 1000**2 / 8,
    "gbit": 1000**3 / 8,
    "bps": 1 / 8,
    "kbps": 1000 / 8,
    "mbps": 1000**2 / 8,
    "gbps": 1000**3 / 8,
}
_BPS_UNITS: Final = ("bps", "kbps", "mbps", "gbps")


def _split(text: str, what: str, example: str) -> tuple[float, str, bool]:
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"not a {what}: {text!r} (expected e.g. {example})")
    number = float(match.group(1))
    if not math.isfinite(number):
        raise ValueError(f"not a {what}: {text!r} (expected e.g. {example})")
    return number, match.group(2), match.group(3) is not None


def parse_duration(text: str) -> float:
    """Seconds in ``40ms``, ``0.5s``, ``250us``; a unit is required."""
    number, unit, per_second = _split(text, "duration", "40ms, 0.5s")
    factor = _DURATIONS.get(unit.lower() if unit != "µs" else unit)
    if factor is None or per_second:
        raise ValueError(f"not a duration: {text!r} (use us, ms or s, e.g. 40ms)")
    return number * factor


def parse_byte_rate(text: str) -> float:
    """Bytes per second in ``1Gbit/s``, ``100Mbps``, ``60MiB/s``, ``500kB/s``.

    Decimal units (kB, MB, GB, kbit, Mbit, Gbit) are powers of 1000, binary ones (KiB, MiB,
    GiB) powers of 1024; bits are written ``bit`` or ``bps``. The ``/s`` may be left out.
    """
    number, unit, per_second = _split(text, "rate", "1Gbit/s, 60MiB/s")
    key = unit.lower()
    factor = _BYTE_RATES.get(key)
    if factor is not None and unit.endswith("b"):
        raise ValueError(f"ambiguous rate unit in {text!r}: write MB/s for bytes, Mbit/s for bits")
    if factor is None or (per_second and key in _BPS_UNITS):
        raise ValueError(
            f"unknown rate unit in {text!r} (use B, kB, MB, GB, KiB, MiB, GiB per second,"
            " or bit, kbit, Mbit, Gbit per second)"
        )
    rate = number * factor
    if rate <= 0:
        raise ValueError(f"rate {text!r} must be positive")
    return rate


def parse_request_rate(text: str) -> float:
    """Requests per second in ``500/s`` or ``500``."""
    number, unit, _ = _split(text, "request rate", "500/s")
    if unit:
        raise ValueError(f"not a request rate: {text!r} (expected e.g. 500/s)")
    if number <= 0:
        raise ValueError(f"request rate {text!r} must be positive")
    return number


def format_rate(bytes_per_second: float) -> str:
    """A byte rate for people: ``60 MiB/s``, ``7.5 GB/s``."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if bytes_per_second >= factor:
            return f"{bytes_per_second / factor:.4g} {unit}/s"
    return f"{bytes_per_second:.4g} B/s"


def parse_items(
    items: Iterable[str], parsers: Mapping[str, Callable[[str], T]], *, expected: str
) -> dict[str, T]:
    """``key=value`` items (keys in any case, each once) parsed by their key's parser; a
    ValueError says what is wrong (``expected`` names what was expected)."""
    values: dict[str, T] = {}
    for item in items:
        key, eq, value = (part.strip() for part in item.partition("="))
        key = key.lower()
        if not eq or key not in parsers:
            raise ValueError(f"expected {expected}, not {item.strip()!r}")
        if key in values:
            raise ValueError(f"{key} given twice")
        try:
            values[key] = parsers[key](value)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    return values
