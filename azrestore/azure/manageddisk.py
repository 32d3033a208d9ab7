"""Direct upload to a managed disk, the way Add-AzVhd does it: create the disk for upload,
grant write access, stream the VHD into its upload URL, and always revoke access."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import anyio

from ..errors import AzRestoreError, ControlPlaneError, InputError, TargetExistsError
from ..formats.sizes import blob_size, format_size
from ..sources.inspect import inspect_image
from ..sources.raw import RawImage
from ..transfer.config import TransferConfig
from ..transfer.pipeline import upload_disk
from ..transfer.progress import ProgressCallback, TransferResult
from .compute import ArmSettings, ResourceId, arm_call, compute_client, lro
from .pageblob import open_page_blob

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
    """What :func:`upload_to_managed_disk` did."""

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
    family = report.layout.os_family
    os_type: OsType | None = (
        "Linux" if family == "linux" else "Windows" if family == "windows" else None
    )
    generation: Generation = "V2" if report.layout.generation == "V2" else "V1"
    return os_type, generation


async def upload_to_managed_disk(
    image: RawImage,
    disk_id: str,
    *,
    location: str,
    config: TransferConfig,
    settings: ArmSettings | None = None,
    os_type: OsType | Literal["auto", "none"] = "auto",
    hyper_v_generation: Generation | Literal["auto"] = "auto",
    sku: str = "Standard_LRS",
    tags: dict[str, str] | None = None,
    on_progress: ProgressCallback | None = None,
) -> ManagedDiskResult:
    """Create managed disk ``disk_id`` (createOption Upload, the exact size), grant write
    access, upload ``image`` through the core pipeline, then revoke access, which Azure
    does on failure and cancellation too (shielded). Returns the disk's final state.

    ``os_type`` and ``hyper_v_generation`` default to what the image's partition table
    says. Bad input is refused before anything is created.
    """
    settings = settings or ArmSettings.from_env()
    rid = ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
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

    from azure.mgmt.compute.models import (
        CreationData,
        Disk,
        DiskProperties,
        DiskSku,
        GrantAccessData,
    )

    where = f"disk {rid.name} in {rid.resource_group}"
    async with compute_client(settings, rid.subscription) as compute:
        disks = compute.disks
        try:
            await arm_call(f"get {where}", disks.get(rid.resource_group, rid.name))
        except ControlPlaneError as exc:
            if exc.status != 404:
                raise
        else:
            raise TargetExistsError(f"{disk_id}: the managed disk already exists")
        disk = Disk(
            location=location,
            sku=DiskSku(name=sku),
            tags=tags,
            properties=DiskProperties(
                os_type=chosen_os,
                hyper_v_generation=generation,
                creation_data=CreationData(create_option="Upload", upload_size_bytes=size),
            ),
        )
        await lro(
            f"create {where}", disks.begin_create_or_update(rid.resource_group, rid.name, disk)
        )
        grant = GrantAccessData(access="Write", duration_in_seconds=ACCESS_SECONDS)
        access = await lro(
            f"grant write access to {where}",
            disks.begin_grant_access(rid.resource_group, rid.name, grant),
        )
        transfer: TransferResult | None = None
        try:
            async with open_page_blob(
                access.access_sas,
                checksum=config.checksum,
                existing=True,
                concurrency=config.concurrency,
            ) as sink:
                transfer = await upload_disk(image, sink, config=config, on_progress=on_progress)
        except BaseException as exc:
            # Billed as Standard HDD until revoked, and the SAS must not outlive us.
            with anyio.CancelScope(shield=True), anyio.move_on_after(_REVOKE_TIMEOUT):
                try:
                    await lro(
                        f"revoke access to {where}",
                        disks.begin_revoke_access(rid.resource_group, rid.name),
                    )
                except AzRestoreError as revoke_error:
                    if isinstance(exc, AzRestoreError):
                        exc.add_note(f"revoking access also failed: {revoke_error}")
            if isinstance(exc, AzRestoreError):
                exc.args = (f"{exc}; the disk {disk_id} was left in Azure, not uploaded",)
            raise
        await lro(
            f"revoke access to {where} (Azure checks the VHD here)",
            disks.begin_revoke_access(rid.resource_group, rid.name),
        )
        final = await arm_call(f"get {where}", disks.get(rid.resource_group, rid.name))
    return ManagedDiskResult(
        disk_id=str(rid),
        disk_state=str(final.properties.disk_state if final.properties else "unknown"),
        os_type=chosen_os,
        hyper_v_generation=generation,
        transfer=transfer,
    )
