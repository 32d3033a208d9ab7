"""The transfer pipeline: read windows, bounded buffers and concurrency, retries, bandwidth
budget, accounting and progress events. It knows the :class:`PageSink` protocol, not Azure.

Exports load on first use, so ``transfer.convert`` starts without the upload modules.
"""

from __future__ import annotations

from .._lazy import lazy_exports

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .config import Checksum, TransferConfig
    from .progress import ProgressEvent, TransferResult, TransferStats
    from .sink import PageSink

_EXPORTS = {
    "Checksum": ".config",
    "PageSink": ".sink",
    "ProgressEvent": ".progress",
    "TransferConfig": ".config",
    "TransferResult": ".progress",
    "TransferStats": ".progress",
}


__getattr__ = lazy_exports(__name__, globals(), _EXPORTS)

__all__ = [
    "Checksum",
    "PageSink",
    "ProgressEvent",
    "TransferConfig",
    "TransferResult",
    "TransferStats",
]
