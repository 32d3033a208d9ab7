"""azrestore: restore backed-up disks and whole VMs into Microsoft Azure, fast.

The library API is async and works under asyncio, uvloop and anyio::

    from azrestore import TransferConfig, open_page_blob, upload_disk

    async with open_page_blob(sas_url) as sink:
        result = await upload_disk("disk.raw", sink, config=TransferConfig(concurrency=8))
"""

from __future__ import annotations

from ._lazy import lazy_exports

# The idiom mypy reads as typing.TYPE_CHECKING, without importing typing (8 ms) at start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from .azure.pageblob import PageBlobSink, open_page_blob
    from .errors import (
        AuthenticationExpired,
        AzRestoreError,
        InputError,
        SinkError,
        TargetExistsError,
        TransferError,
    )
    from .sources.base import FORMATS, ChainLink, DiskSource
    from .sources.open import open_source
    from .sources.raw import RawImage, open_raw_image
    from .sources.report import ImageReport, inspect_image, inspect_source
    from .transfer.bandwidth import Bandwidth
    from .transfer.budget import TransferBudget
    from .transfer.config import Checksum, TransferConfig
    from .transfer.convert import ConvertResult, convert_to_vhd
    from .transfer.pipeline import upload_disk
    from .transfer.progress import EventKind, ProgressEvent, TransferResult, TransferStats
    from .transfer.resume import ResumeOptions
    from .transfer.scheduler import UploadJob, upload_many
    from .transfer.sink import PageSink
    from .transfer.verify import VerifyResult, verify_disk

_EXPORTS = {
    "AuthenticationExpired": ".errors",
    "AzRestoreError": ".errors",
    "FORMATS": ".sources.base",
    "Bandwidth": ".transfer.bandwidth",
    "ChainLink": ".sources.base",
    "Checksum": ".transfer.config",
    "ConvertResult": ".transfer.convert",
    "DiskSource": ".sources.base",
    "EventKind": ".transfer.progress",
    "ImageReport": ".sources.report",
    "InputError": ".errors",
    "PageBlobSink": ".azure.pageblob",
    "PageSink": ".transfer.sink",
    "ProgressEvent": ".transfer.progress",
    "RawImage": ".sources.raw",
    "ResumeOptions": ".transfer.resume",
    "SinkError": ".errors",
    "TargetExistsError": ".errors",
    "TransferBudget": ".transfer.budget",
    "TransferConfig": ".transfer.config",
    "TransferError": ".errors",
    "TransferResult": ".transfer.progress",
    "TransferStats": ".transfer.progress",
    "UploadJob": ".transfer.scheduler",
    "VerifyResult": ".transfer.verify",
    "convert_to_vhd": ".transfer.convert",
    "inspect_image": ".sources.report",
    "inspect_source": ".sources.report",
    "open_page_blob": ".azure.pageblob",
    "open_raw_image": ".sources.raw",
    "open_source": ".sources.open",
    "upload_disk": ".transfer.pipeline",
    "upload_many": ".transfer.scheduler",
    "verify_disk": ".transfer.verify",
}


__getattr__ = lazy_exports(__name__, globals(), _EXPORTS)

__version__ = "0.1.0"

__all__ = [
    "FORMATS",
    "AuthenticationExpired",
    "AzRestoreError",
    "Bandwidth",
    "ChainLink",
    "Checksum",
    "ConvertResult",
    "DiskSource",
    "EventKind",
    "ImageReport",
    "InputError",
    "PageBlobSink",
    "PageSink",
    "ProgressEvent",
    "RawImage",
    "ResumeOptions",
    "SinkError",
    "TargetExistsError",
    "TransferBudget",
    "TransferConfig",
    "TransferError",
    "TransferResult",
    "TransferStats",
    "UploadJob",
    "VerifyResult",
    "__version__",
    "convert_to_vhd",
    "inspect_image",
    "inspect_source",
    "open_page_blob",
    "open_raw_image",
    "open_source",
    "upload_disk",
    "upload_many",
    "verify_disk",
]
