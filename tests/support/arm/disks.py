"""Disk building blocks: upload a disk through its SAS, read and write its blob, footers."""

from __future__ import annotations

from typing import Any

from azure.mgmt.compute import types as compute_types
from azure.mgmt.compute.models import Disk
from azure.storage.blob.aio import BlobClient

from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import VhdFooter, fixed_vhd_footer
from tests.support.arm.bodies import request_body
from tests.support.arm.env import LOCATION, RG, ArmEnv


async def upload_disk(
    env: ArmEnv,
    name: str,
    *,
    virtual_size: int = 32 * MiB,
    os_type: str | None = "Linux",
    generation: str = "V2",
    footer: bytes | None = None,
    revoke: bool = True,
) -> Any:
    """Create an Upload disk, write a fixed VHD footer to it through its SAS, revoke.

    Returns the disk (after revoke) or, with ``revoke=False``, the SAS URL.
    """
    properties: dict[str, Any] = {
        "hyperVGeneration": generation,
        "creationData": {"createOption": "Upload", "uploadSizeBytes": virtual_size + 512},
    }
    if os_type is not None:
        properties["osType"] = os_type
    create = await env.compute.disks.begin_create_or_update(
        RG, name, request_body(compute_types.Disk, {"location": LOCATION, "properties": properties})
    )
    await create.result()
    grant = await env.compute.disks.begin_grant_access(
        RG, name, {"access": "Write", "durationInSeconds": 3600}
    )
    access = await grant.result()
    sas = access.access_sas
    assert sas is not None
    data = footer if footer is not None else fixed_vhd_footer(virtual_size)
    await write_pages(sas, virtual_size + 512 - len(data), data)
    if not revoke:
        return sas
    revoke_access = await env.compute.disks.begin_revoke_access(RG, name)
    await revoke_access.result()
    return await env.compute.disks.get(RG, name)


async def write_pages(sas_url: str, offset: int, data: bytes) -> None:
    """Put Page through a SAS URL (the gateway checks it like Azure)."""
    async with BlobClient.from_blob_url(sas_url) as blob:
        await blob.upload_page(data, offset=offset, length=len(data))


async def read_tail(sas_url: str, length: int = 512) -> tuple[bytes, int]:
    """The blob's last ``length`` bytes and its size, through a SAS URL."""
    async with BlobClient.from_blob_url(sas_url) as blob:
        properties = await blob.get_blob_properties()
        size = int(properties.size)
        downloader = await blob.download_blob(offset=size - length, length=length)
        return await downloader.readall(), size


async def create_upload_disk(env: ArmEnv, name: str, size: int) -> Disk:
    """Create an Upload disk of ``uploadSizeBytes`` ``size`` (nothing uploaded)."""
    return await create_disk(
        env,
        name,
        {
            "location": LOCATION,
            "properties": {"creationData": {"createOption": "Upload", "uploadSizeBytes": size}},
        },
    )


async def create_disk(env: ArmEnv, name: str, disk: dict[str, Any]) -> Disk:
    """Create the disk ``name`` that the request body ``disk`` describes, and wait for it."""
    poller = await env.compute.disks.begin_create_or_update(
        RG, name, request_body(compute_types.Disk, disk)
    )
    return await poller.result()


def footer_with(virtual_size: int, **changes: Any) -> bytes:
    """A fixed VHD footer with some fields changed (the checksum recomputed)."""
    fields = VhdFooter.parse(fixed_vhd_footer(virtual_size)).__dict__ | changes
    return VhdFooter(**fields).pack()


async def disk_state(env: ArmEnv, name: str) -> str | None:
    """The disk's ``diskState`` as a GET through the SDK reports it."""
    disk = await env.compute.disks.get(RG, name)
    assert disk.properties is not None
    return disk.properties.disk_state
