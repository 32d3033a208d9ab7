"""Creating a managed disk: Upload (an empty page blob ready for the uploader), Empty, or
Import (see :mod:`.importing`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from azrestore.emulator.arm.calls import Call, Reply
from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.disks.importing import prepare_import
from azrestore.emulator.arm.disks.representation import disk_body
from azrestore.emulator.arm.disks.validation import empty_disk_size, new_disk, upload_size
from azrestore.emulator.arm.resource_ids import id_key
from azrestore.emulator.arm.state.disks import DiskRecord
from azrestore.emulator.arm.storage import new_container_name
from azrestore.emulator.arm.vhd_check import FOOTER_BYTES

__all__ = ["DiskCreation"]


class DiskCreation:
    """Handles the PUT that creates a disk."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.registry = core.registry

    async def create(self, call: Call, name: str, body: Mapping[str, Any]) -> Reply:
        """Create the disk ``name`` that ``body`` describes (202 and a disk operation)."""
        disk, creation = new_disk(call, name, body, self.core.clock)
        props = body.get("properties") or {}
        run: Callable[[], Awaitable[Any]]
        duration = "disks/write"
        if disk.create_option == "Upload":
            size = upload_size(creation)
            disk.upload_size_bytes = size
            disk.disk_size_bytes = size - FOOTER_BYTES
            run = self._create_upload_blob(disk)
        elif disk.create_option == "Empty":
            disk.disk_size_bytes = empty_disk_size(props)
            run = _nothing
        else:
            run = await prepare_import(self.core, disk, creation)
            duration = "disks/import"
        self.registry.disks[id_key(disk.id)] = disk
        operation = self.core.operations.begin_on(
            call,
            disk,
            name="disks/write",
            provider="disks",
            run=run,
            rollback=lambda error: setattr(disk, "provisioning_state", "Failed"),
            delay=self.core.clock.duration(duration),
        )
        return Reply(
            202, disk_body(self.registry, disk), self.core.operations.lro_headers(call, operation)
        )

    def _create_upload_blob(self, disk: DiskRecord) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            storage = self.core.disk_storage()
            container = new_container_name()
            assert disk.upload_size_bytes is not None
            await storage.create_blob(container, disk.upload_size_bytes)
            disk.container = container
            disk.blob_ready = True
            disk.provisioning_state = "Succeeded"

        return run


async def _nothing() -> None:
    return None
