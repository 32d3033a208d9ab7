"""Import: a disk made from a page blob holding a fixed VHD in the emulated storage account
(``creationData.sourceUri`` and ``storageAccountId``), its footer checked like an upload's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.errors import invalid_parameter
from azrestore.emulator.arm.request_bodies import required
from azrestore.emulator.arm.state.disks import DiskRecord
from azrestore.emulator.arm.storage import new_container_name
from azrestore.emulator.arm.vhd_check import FOOTER_BYTES, check_fixed_vhd_footer

__all__ = ["prepare_import"]


async def prepare_import(
    core: Core, disk: DiskRecord, creation: Mapping[str, Any]
) -> Callable[[], Awaitable[None]]:
    """Check an Import's source now (400 InvalidParameter), size ``disk`` from it, and return
    the operation's work: check the footer (InvalidVhd), then copy the blob."""
    storage = core.disk_storage()
    source_uri = str(required(creation, "sourceUri", "disk.creationData.sourceUri"))
    account_id = str(required(creation, "storageAccountId", "disk.creationData.storageAccountId"))
    if account_id.rstrip("/").lower() != core.storage_account_id.lower():
        raise invalid_parameter(
            "disk.creationData.storageAccountId",
            f"The storage account '{account_id}' was not found. The emulator's account is "
            f"'{core.storage_account_id}'.",
        )
    parsed = storage.parse_source(source_uri)
    if parsed is None:
        raise invalid_parameter(
            "disk.creationData.sourceUri",
            f"The source URI '{source_uri}' is not a blob in storage account '{account_id}'.",
        )
    source = await storage.source_blob(*parsed)
    if source is None:
        raise invalid_parameter(
            "disk.creationData.sourceUri",
            f"The source blob '{source_uri}' does not exist.",
        )
    if not source.is_page_blob:
        raise invalid_parameter(
            "disk.creationData.sourceUri",
            f"The source blob '{source_uri}' is not a page blob. Only page blobs holding a "
            "fixed VHD can be imported.",
        )
    disk.source_uri = source_uri
    disk.storage_account_id = account_id
    disk.disk_size_bytes = max(0, source.size - FOOTER_BYTES)

    async def run() -> None:
        footer, size = await storage.read_footer(source.container, source.name)
        check_fixed_vhd_footer(footer, size, disk=f"disk '{disk.name}' with blob {source_uri}")
        container = new_container_name()
        await storage.copy(source, container)
        disk.container = container
        disk.blob_ready = True
        disk.uploaded = True
        disk.provisioning_state = "Succeeded"

    return run
