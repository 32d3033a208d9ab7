"""azrestore: restore backed-up disks and whole VMs into Microsoft Azure, fast.

The library API is async and works under asyncio, uvloop and anyio::

    from azrestore import TransferConfig, open_page_blob, upload_disk

    async with open_page_blob(sas_url) as sink:
        result = await upload_disk("disk.raw", sink, config=TransferConfig(concurrency=8))
"""

from .azure.pageblob import PageBlobSink, open_page_blob
from .errors import (
    AuthenticationExpired,
    AzRestoreError,
    InputError,
    SinkError,
    TargetExistsError,
    TransferError,
)
from .sources.inspect import ImageReport, inspect_image
from .sources.raw import RawImage, open_raw_image
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

__version__ = "0.1.0"

__all__ = [
    "AuthenticationExpired",
    "AzRestoreError",
    "Bandwidth",
    "Checksum",
    "ConvertResult",
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
    "open_page_blob",
    "open_raw_image",
    "upload_disk",
    "upload_many",
    "verify_disk",
]
