"""The transfer pipeline: chunk plan, bounded buffers and concurrency, retries, bandwidth
budget, accounting and progress events. It knows the :class:`PageSink` protocol, not Azure.

Exports load on first use, so ``transfer.convert`` starts without the upload modules.
"""

from __future__ import annotations

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


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Checksum",
    "PageSink",
    "ProgressEvent",
    "TransferConfig",
    "TransferResult",
    "TransferStats",
]
