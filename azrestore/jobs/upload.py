"""Upload one disk source (a raw file or device, a container format, an NBD export): into
a page blob (optionally read back and compared), or into a new managed disk.

The source is opened and checked, Azure's size rule for the target too (a page blob at
most 8 TiB, a managed disk 20 MiB to 32 TiB), before anything is created in Azure. Heavy modules
(aiohttp, numpy, the Resource Manager SDKs) are imported when a job runs, so that commands
which never upload start faster.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import InputError
from ..formats.limits import page_blob_problem
from ..sources.open import open_source

if TYPE_CHECKING:
    from ..azure.arm import ArmSettings
    from ..azure.diskupload import DiskUploadStatus
    from ..azure.manageddisk import ManagedDiskResult
    from ..azure.proxy import ProxySettings
    from ..transfer.config import TransferConfig
    from ..transfer.progress import ProgressCallback, TransferResult
    from ..transfer.resume import ResumeOptions
    from ..transfer.verify import VerifyResult


@dataclass(frozen=True, slots=True)
class BlobTarget:
    """How to write page blobs: the credentials for their URLs, and what may be there.

    ``connection_string`` (an account key or SAS) signs URLs that carry no SAS of their
    own; without either, Azure AD is used. ``overwrite`` replaces a blob that exists;
    ``existing`` writes into a blob that exists already with exactly the VHD's size.
    """

    connection_string: str | None = None
    overwrite: bool = False
    existing: bool = False
    #: the forward proxies to reach storage through (None: directly)
    proxy: ProxySettings | None = None


@dataclass(frozen=True, slots=True)
class ManagedDiskTarget:
    """The managed disk to create: its resource id, region, OS type, generation and SKU
    (``auto`` takes the OS type and generation from the image's partition table)."""

    disk_id: str
    location: str
    os_type: Literal["Linux", "Windows", "auto", "none"] = "auto"
    generation: Literal["V1", "V2", "auto"] = "auto"
    sku: str = "Standard_LRS"


async def upload_to_page_blob(
    image_path: str | os.PathLike[str],
    url: str,
    target: BlobTarget,
    *,
    config: TransferConfig,
    on_progress: ProgressCallback | None = None,
    resume: ResumeOptions | None = None,
    verify: bool = False,
    image_format: str | None = None,
) -> tuple[TransferResult, VerifyResult | None]:
    """Upload ``image_path`` (a file of any format, or an NBD URL; ``image_format`` forces
    its format) as a fixed VHD into the page blob at ``url``; with ``verify``, read the
    blob back and compare it with the image (else None). A disk over 8 TiB is refused
    unless the blob exists (``target.existing``: a managed disk's upload URL, whose size
    is checked instead)."""
    from ..azure.pageblob import open_page_blob
    from ..transfer.pipeline import upload_disk
    from ..transfer.verify import verify_disk

    with await open_source(image_path, image_format=image_format) as image:
        problem = None if target.existing else page_blob_problem(image.size)
        if problem is not None:
            raise InputError(f"{image.path}: {problem}")
        async with open_page_blob(
            url,
            connection_string=target.connection_string,
            checksum=config.checksum,
            overwrite=target.overwrite,
            existing=target.existing,
            concurrency=config.slots,
            proxy=target.proxy,
        ) as sink:
            result = await upload_disk(
                image, sink, config=config, on_progress=on_progress, resume=resume
            )
            checked = await verify_disk(image, sink, config=config) if verify else None
            return result, checked


async def upload_to_new_managed_disk(
    image_path: str | os.PathLike[str],
    disk: ManagedDiskTarget,
    *,
    settings: ArmSettings,
    config: TransferConfig,
    on_progress: ProgressCallback | None = None,
    resume: ResumeOptions | None = None,
    status: DiskUploadStatus | None = None,
    image_format: str | None = None,
) -> ManagedDiskResult:
    """Create managed disk ``disk`` with the image's exact size and upload the image into
    it (direct upload, like Add-AzVhd), through the Resource Manager ``settings`` name.

    With ``resume``, an interrupted upload into the disk continues (or, with
    ``resume.restart``, the disk left open is deleted and created again); ``status``
    follows the disk's state for a caller that is interrupted midway. ``image_path`` is a
    file of any format or an NBD URL (``image_format`` forces its format); a managed disk
    takes up to 32 TiB (an OS disk 4 TiB, over 2 TiB with generation V2)."""
    from ..azure.manageddisk import create_disk_and_upload

    with await open_source(image_path, image_format=image_format) as image:
        return await create_disk_and_upload(
            image,
            disk.disk_id,
            location=disk.location,
            config=config,
            settings=settings,
            os_type=disk.os_type,
            hyper_v_generation=disk.generation,
            sku=disk.sku,
            on_progress=on_progress,
            resume=resume,
            status=status,
        )
