"""Direct upload to a managed disk, the way Add-AzVhd does it: create the disk for upload,
grant write access, stream the VHD into its upload URL, and always revoke access."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal

import anyio

from ..errors import AzRestoreError, InputError, TargetExistsError
from ..formats.os_disk import os_disk_kind
from ..formats.sizes import blob_size, format_size
from ..sources.raw import RawImage
from ..sources.report import inspect_image
from ..transfer.budget import TransferBudget
from ..transfer.config import TransferConfig
from ..transfer.pipeline import upload_disk
from ..transfer.progress import ProgressCallback, TransferResult
from .arm import ArmSettings
from .controlplane import ControlPlane
from .pageblob import open_page_blob
from .resource_id import ResourceId

#: Azure's bounds on uploadSizeBytes (virtual size + 512).
MIN_UPLOAD_SIZE = 20_972_032
MAX_UPLOAD_SIZE = 35_183_298_347_520
#: How long the write SAS lives; access is revoked as soon as the upload ends anyway.
ACCESS_SECONDS = 24 * 3600
#: Revoking may not hang a failed or cancelled run for ever.
_REVOKE_TIMEOUT = 600.0

OsType = Literal["Linux", "Windows"]
Generation = Literal["V1", "V2"]


@dataclass(frozen=True, slots=True)
class ManagedDiskResult:
    """What :func:`create_disk_and_upload` did."""

    disk_id: str
    disk_state: str
    os_type: str | None
    hyper_v_generation: str | None
    transfer: TransferResult

    def to_json(self) -> dict[str, Any]:
        data = self.transfer.to_json()
        data.update(
            disk_id=self.disk_id,
            disk_state=self.disk_state,
            os_type=self.os_type,
            hyper_v_generation=self.hyper_v_generation,
        )
        return data


async def detect_disk_kind(image: RawImage) -> tuple[OsType | None, Generation]:
    """OS type and generation from the image's partition table: an OS disk's family
    (None when it is not recognisably an OS disk) and V2 for UEFI, V1 otherwise."""
    report = await inspect_image(image.path)
    kind = os_disk_kind(report.layout)
    os_type: OsType | None = (
        "Linux" if kind.family == "linux" else "Windows" if kind.family == "windows" else None
    )
    # Unsure of the firmware: V1 (this command's policy; a restore plan asks instead).
    generation: Generation = kind.generation or "V1"
    return os_type, generation


async def create_disk_and_upload(
    image: RawImage,
    disk_id: str,
    *,
    location: str,
    config: TransferConfig,
    settings: ArmSettings,
    control: ControlPlane | None = None,
    os_type: OsType | Literal["auto", "none"] = "auto",
    hyper_v_generation: Generation | Literal["auto"] = "auto",
    sku: str = "Standard_LRS",
    tags: dict[str, str] | None = None,
    on_progress: ProgressCallback | None = None,
) -> ManagedDiskResult:
    """Create managed disk ``disk_id`` (createOption Upload, the exact size) and upload
    ``image`` into it with :func:`upload_into_ready_disk`. Returns the disk's final state.

    ``os_type`` and ``hyper_v_generation`` default to what the image's partition table
    says. Bad input is refused before anything is created.
    """
    ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
    if not location:
        raise InputError("a location is needed to create a managed disk (--location)")
    size = blob_size(image.size)
    if not MIN_UPLOAD_SIZE <= size <= MAX_UPLOAD_SIZE:
        raise InputError(
            f"{image.path}: a managed disk upload must be between {format_size(MIN_UPLOAD_SIZE)}"
            f" and {format_size(MAX_UPLOAD_SIZE)}; this disk's VHD is {format_size(size)}"
        )
    detected_os, detected_generation = await detect_disk_kind(image)
    chosen_os = detected_os if os_type == "auto" else None if os_type == "none" else os_type
    generation = detected_generation if hyper_v_generation == "auto" else hyper_v_generation
    if generation == "V1" and detected_generation == "V2" and chosen_os is not None:
        raise InputError(
            f"{image.path}: the disk boots with UEFI (GPT with an EFI system partition), so it"
            " needs generation V2; V1 would not boot it"
        )

    async with AsyncExitStack() as stack:
        if control is None:
            control = await stack.enter_async_context(ControlPlane(settings))
        if await control.get_disk(disk_id) is not None:
            raise TargetExistsError(f"{disk_id}: the managed disk already exists")
        await control.create_upload_disk(
            disk_id,
            location=location,
            upload_size=size,
            os_type=chosen_os,
            hyper_v_generation=generation,
            sku=sku,
            tags=tags,
        )
        transfer = await upload_into_ready_disk(
            control, image, disk_id, config=config, on_progress=on_progress
        )
        final = await control.get_disk(disk_id)
    return ManagedDiskResult(
        disk_id=final.id if final else disk_id,
        disk_state=final.state if final else "unknown",
        os_type=chosen_os,
        hyper_v_generation=generation,
        transfer=transfer,
    )


async def upload_into_ready_disk(
    control: ControlPlane,
    image: RawImage,
    disk_id: str,
    *,
    config: TransferConfig,
    on_progress: ProgressCallback | None = None,
    budget: TransferBudget | None = None,
) -> TransferResult:
    """Grant write access to a disk that is ReadyToUpload, upload ``image`` into its upload
    URL (an existing page blob of exactly the VHD's size), and revoke access: after success
    (Azure checks the VHD then), and on failure or cancellation too, shielded, because the
    disk is billed as Standard HDD and the SAS stays valid until revoked."""
    sas_url = await control.grant_write(disk_id, ACCESS_SECONDS)

    async def grant_again() -> str:
        # A SAS that expired mid-upload (403 AuthenticationFailed): grant access again
        # and carry on with the new upload URL.
        return await control.grant_write(disk_id, ACCESS_SECONDS)

    try:
        async with open_page_blob(
            sas_url,
            checksum=config.checksum,
            existing=True,
            concurrency=config.concurrency,
            credential_refresher=grant_again,
            proxy=control.proxy,
        ) as sink:
            transfer = await upload_disk(
                image, sink, config=config, on_progress=on_progress, budget=budget
            )
    except BaseException as exc:
        revoked = "access revoked"
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(_REVOKE_TIMEOUT):
                    await control.revoke(disk_id)
            except (AzRestoreError, TimeoutError) as revoke_error:
                # Azure refuses to revoke an incomplete VHD; the SAS then lives until
                # it expires.
                revoked = f"revoking access failed too ({revoke_error})"
        if isinstance(exc, AzRestoreError):
            exc.args = (f"{exc}; the disk {disk_id} was left in Azure, not uploaded; {revoked}",)
        raise
    await control.revoke(disk_id)
    return transfer
