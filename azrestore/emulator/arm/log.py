"""The simulator's ordered log: requests served and operations that ended."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from azrestore.emulator.arm.clock import Clock

__all__ = ["LogEntry", "SimulatorLog"]

_LOG_LIMIT: Final = 100_000


@dataclass(frozen=True)
class LogEntry:
    """One line of the simulator's log: a request served, or an operation that ended.

    ``kind`` is ``request`` or ``operation``; ``outcome`` is ``ok``, ``accepted`` (a
    long-running operation started) or the error code for requests, ``Succeeded`` or
    ``Failed`` for operations; ``fault`` tells an injected fault.  ``elapsed`` counts real
    seconds since the simulator started.
    """

    seq: int
    time: datetime
    elapsed: float
    kind: str
    method: str | None
    path: str
    resource_id: str | None
    operation: str
    api_version: str | None
    status: int | None
    outcome: str
    fault: bool = False
    operation_id: str | None = None
    error_code: str | None = None

    @property
    def is_poll(self) -> bool:
        """Whether this is a poll of an operation monitor."""
        return self.operation.startswith("operations/")


class SimulatorLog:
    """The last entries the simulator logged, oldest first (a bounded deque)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: deque[LogEntry] = deque(maxlen=_LOG_LIMIT)
        self._seq = 0

    def record(self, **fields: Any) -> None:
        """Append a log entry (its sequence number and times are added here)."""
        self._seq += 1
        self._entries.append(
            LogEntry(seq=self._seq, time=self._clock.now(), elapsed=self._clock.elapsed, **fields)
        )

    def entries(self) -> tuple[LogEntry, ...]:
        """The log, oldest first."""
        return tuple(self._entries)
