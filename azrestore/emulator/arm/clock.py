"""Simulated time: Azure-shaped operation durations scaled by a time factor, and the
poll intervals each provider's monitors ask for.

The SDK reads the initial ``Retry-After`` as an integer, so that one is whole seconds; the
monitors' ``Retry-After`` is the simulated interval times the time factor, written as a
decimal when it has a fraction (azure-core parses it as a float; 0 would mean "use your
own 30 s default", so it is never 0).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

__all__ = ["DEFAULT_DURATIONS", "POLL_INTERVALS", "Clock", "format_seconds", "iso"]

#: Simulated seconds each operation takes (at time factor 1), shaped like Azure's.
DEFAULT_DURATIONS: Final[Mapping[str, float]] = {
    "disks/write": 3.0,
    "disks/import": 10.0,
    "disks/update": 2.0,
    "disks/delete": 3.0,
    "disks/beginGetAccess": 3.0,
    "disks/endGetAccess": 4.0,
    "virtualMachines/create": 45.0,
    "virtualMachines/write": 15.0,
    "virtualMachines/update": 15.0,
    "virtualMachines/start": 30.0,
    "virtualMachines/powerOff": 15.0,
    "virtualMachines/deallocate": 45.0,
    "virtualMachines/restart": 30.0,
    "virtualMachines/delete": 40.0,
    "virtualMachines/runCommand": 25.0,
    # From a start's end until the guest agent reports Ready (prepared OS disks only).
    "virtualMachines/agentReady": 30.0,
    # How long a run command waits for an agent that never reports before it fails.
    "virtualMachines/agentTimeout": 900.0,
    "networkInterfaces/write": 1.0,
    "networkInterfaces/delete": 2.0,
    "virtualNetworks/write": 3.0,
    "virtualNetworks/delete": 3.0,
    "subnets/write": 2.0,
    "subnets/delete": 2.0,
}

#: Simulated seconds between polls that each provider's monitors ask for.
POLL_INTERVALS: Final[Mapping[str, float]] = {
    "disks": 2.0,
    "compute": 10.0,
    "network": 10.0,
}
_MIN_RETRY_AFTER: Final = 0.01


class Clock:
    """Simulated time: Azure-shaped durations scaled by ``time_factor``."""

    def __init__(self, time_factor: float, durations: Mapping[str, float] | None = None) -> None:
        if not time_factor > 0:
            raise ValueError("time_factor must be positive")
        self.time_factor = time_factor
        self.durations = {**DEFAULT_DURATIONS, **(durations or {})}
        for name, seconds in self.durations.items():
            if seconds < 0:
                raise ValueError(f"duration of {name} must not be negative")
        self._started = time.monotonic()

    def duration(self, name: str) -> float:
        """Real seconds the named operation takes."""
        return self.durations.get(name, 1.0) * self.time_factor

    def scale(self, simulated: float) -> float:
        """Real seconds for ``simulated`` seconds."""
        return simulated * self.time_factor

    def retry_after(self, provider: str) -> float:
        """Real seconds a monitor of ``provider`` asks the client to wait."""
        return max(_MIN_RETRY_AFTER, POLL_INTERVALS.get(provider, 10.0) * self.time_factor)

    @staticmethod
    def now() -> datetime:
        """Wall-clock time (UTC), for timestamps in bodies."""
        return datetime.now(UTC)

    @staticmethod
    def monotonic() -> float:
        """Monotonic seconds, for deadlines."""
        return time.monotonic()

    @property
    def elapsed(self) -> float:
        """Real seconds since the clock was made."""
        return time.monotonic() - self._started


def iso(moment: datetime | None) -> str | None:
    """ARM's timestamp format (ISO 8601 with offset)."""
    return None if moment is None else moment.isoformat()


def format_seconds(seconds: float) -> str:
    """A Retry-After value: whole seconds as an integer, fractions as a decimal.

    azure-core reads Retry-After as a float, so scaled-down simulated times stay exact.
    """
    if seconds == int(seconds):
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")
