"""The transfer pipeline: chunk plan, bounded buffers and concurrency, retries, bandwidth
budget, accounting and progress events. It knows the :class:`PageSink` protocol, not Azure."""

from .config import Checksum, TransferConfig
from .progress import ProgressEvent, TransferResult, TransferStats
from .sink import PageSink

__all__ = [
    "Checksum",
    "PageSink",
    "ProgressEvent",
    "TransferConfig",
    "TransferResult",
    "TransferStats",
]
