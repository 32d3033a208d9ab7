"""Accounting of a transfer, and the progress events a caller subscribes to."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from ..formats.sizes import MiB
from .slots import SlotLimiter


class EventKind(StrEnum):
    STARTED = "started"
    #: bytes read from the source (offset, length of the read window)
    READ = "read"
    #: a range acknowledged by the target; safe to record in a journal
    WRITTEN = "written"
    #: a range of the disk that is not sent (hole, all-zero blocks, padding)
    SKIPPED = "skipped"
    #: a request that failed transiently and will be sent again
    RETRY = "retry"
    #: a range already written by an earlier, interrupted run (from the journal); not sent
    RESUMED = "resumed"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class TransferStats:
    """A snapshot of a transfer's counters.

    ``bytes_uploaded + bytes_skipped + bytes_resumed == blob_size`` once a transfer has
    finished: every byte of the fixed VHD is either sent (data, merged small zero gaps,
    footer), skipped (holes, all-zero blocks, MiB padding) or was written by an earlier run
    that this one resumed (``bytes_resumed``, 0 for a fresh upload). ``bytes_retried`` counts
    bodies sent again.
    """

    disk_size: int = 0
    virtual_size: int = 0
    blob_size: int = 0
    bytes_read: int = 0
    bytes_uploaded: int = 0
    bytes_skipped: int = 0
    bytes_retried: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    bytes_resumed: int = 0
    #: Requests in flight allowed (the run's limit, fixed or found) and most in flight at
    #: once, over all the disks sharing the budget.
    in_flight_limit: int = 0
    in_flight_peak: int = 0

    @property
    def throughput_mib_s(self) -> float:
        """Disk bytes per second, in MiB/s (the disk's size over the wall time)."""
        return self.disk_size / self.seconds / MiB if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One thing that happened. ``offset``/``length`` locate it in the blob."""

    kind: EventKind
    stats: TransferStats
    offset: int = 0
    length: int = 0
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(frozen=True, slots=True)
class TransferResult:
    """What :func:`azrestore.upload_disk` returns."""

    stats: TransferStats
    target: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self.stats)
        data["seconds"] = round(self.stats.seconds, 3)
        data["throughput_mib_s"] = round(self.stats.throughput_mib_s, 2)
        data["url"] = self.target
        return data


@dataclass(slots=True)
class Accounting:
    """Mutable counters owned by one transfer; emits events to subscribers.

    Only the event loop thread touches it, so it needs no lock.
    """

    disk_size: int
    virtual_size: int
    blob_size: int
    subscribers: list[ProgressCallback] = field(default_factory=list)
    bytes_read: int = 0
    bytes_uploaded: int = 0
    bytes_skipped: int = 0
    bytes_retried: int = 0
    bytes_resumed: int = 0
    requests: int = 0
    retries: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    #: The budget's shared slots, whose limit and peak the snapshots report.
    slots: SlotLimiter | None = None

    def snapshot(self) -> TransferStats:
        end = self.finished if self.finished is not None else time.monotonic()
        return TransferStats(
            disk_size=self.disk_size,
            virtual_size=self.virtual_size,
            blob_size=self.blob_size,
            bytes_read=self.bytes_read,
            bytes_uploaded=self.bytes_uploaded,
            bytes_skipped=self.bytes_skipped,
            bytes_retried=self.bytes_retried,
            requests=self.requests,
            retries=self.retries,
            seconds=end - self.started,
            bytes_resumed=self.bytes_resumed,
            in_flight_limit=0 if self.slots is None else self.slots.limit,
            in_flight_peak=0 if self.slots is None else self.slots.peak,
        )

    def _emit(self, kind: EventKind, offset: int = 0, length: int = 0, message: str = "") -> None:
        if self.subscribers:
            event = ProgressEvent(kind, self.snapshot(), offset, length, message)
            for callback in self.subscribers:
                callback(event)

    def start(self) -> None:
        self.started = time.monotonic()
        self._emit(EventKind.STARTED)

    def read(self, offset: int, length: int) -> None:
        self.bytes_read += length
        self._emit(EventKind.READ, offset, length)

    def written(self, offset: int, length: int) -> None:
        self.bytes_uploaded += length
        self.requests += 1
        self._emit(EventKind.WRITTEN, offset, length)

    def skipped(self, offset: int, length: int) -> None:
        if length > 0:
            self.bytes_skipped += length
            self._emit(EventKind.SKIPPED, offset, length)

    def resumed(self, offset: int, length: int) -> None:
        if length > 0:
            self.bytes_resumed += length
            self._emit(EventKind.RESUMED, offset, length)

    def retry(self, offset: int, length: int, message: str) -> None:
        self.retries += 1
        self.bytes_retried += length
        self._emit(EventKind.RETRY, offset, length, message)

    def finish(self) -> TransferStats:
        self.finished = time.monotonic()
        self._emit(EventKind.FINISHED)
        return self.snapshot()
