"""Updating a managed disk (PUT on an existing disk, or PATCH): tags, osType,
hyperVGeneration (set once), and growing it (unattached or reserved disks only)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from azrestore.emulator.arm.calls import Call, Reply
from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.disks.representation import GiB, disk_body, refuse_if_busy
from azrestore.emulator.arm.disks.validation import (
    MODELLED,
    generation_of,
    os_type_of,
    property_change,
    same,
)
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.request_bodies import tags_of, whole_number
from azrestore.emulator.arm.state.disks import DiskRecord
from azrestore.emulator.arm.vhd_build import build_fixed_vhd_footer

__all__ = ["DiskUpdates"]


class DiskUpdates:
    """Handles the PUT and PATCH that change an existing disk."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.registry = core.registry

    async def update(
        self, call: Call, disk: DiskRecord, body: Mapping[str, Any], *, replace: bool
    ) -> Reply:
        """Apply ``body`` to ``disk`` (``replace``: a PUT, which may not change creationData)."""
        refuse_if_busy(disk)
        props: Mapping[str, Any] = body.get("properties") or {}
        creation = props.get("creationData")
        if replace and isinstance(creation, Mapping):
            same(creation.get("createOption"), disk.create_option, "creationData.createOption")
            same(
                creation.get("uploadSizeBytes"),
                disk.upload_size_bytes,
                "creationData.uploadSizeBytes",
            )
            same(creation.get("sourceUri"), disk.source_uri, "creationData.sourceUri")
        generation = generation_of(props)
        if generation is not None and disk.hyper_v_generation not in (None, generation):
            raise property_change("hyperVGeneration")
        os_type = os_type_of(props)
        new_size = self._new_size(disk, props)
        tags = tags_of(body) if (replace or "tags" in body) else disk.tags
        disk.provisioning_state = "Updating"

        async def run() -> None:
            if generation is not None:
                disk.hyper_v_generation = generation
            if os_type is not None:
                disk.os_type = os_type
            if new_size is not None:
                if disk.blob_ready and disk.container is not None:
                    # The data stays; the exported VHD grows, with its footer at the new end.
                    await self.core.disk_storage().resize(
                        disk.container,
                        disk.disk_size_bytes,
                        new_size,
                        build_fixed_vhd_footer(new_size),
                    )
                disk.disk_size_bytes = new_size
            disk.tags = dict(tags)
            disk.echo_unmodelled(props, MODELLED)
            disk.provisioning_state = "Succeeded"

        operation = self.core.operations.begin_on(
            call,
            disk,
            name="disks/update",
            provider="disks",
            run=run,
            rollback=lambda error: setattr(disk, "provisioning_state", "Succeeded"),
        )
        return Reply(
            200, disk_body(self.registry, disk), self.core.operations.lro_headers(call, operation)
        )

    def _new_size(self, disk: DiskRecord, props: Mapping[str, Any]) -> int | None:
        """The size ``diskSizeGB`` grows the disk to (None: unchanged); never smaller."""
        if props.get("diskSizeGB") is None:
            return None
        size_gb = whole_number(props["diskSizeGB"], "disk.diskSizeGB")
        size = size_gb * GiB
        if size < disk.disk_size_bytes:
            current_gb = math.ceil(disk.disk_size_bytes / GiB)
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Disk '{disk.name}' cannot be resized from {current_gb} GB to {size_gb} GB: "
                "disks can only be made larger.",
            )
        if size == disk.disk_size_bytes:
            return None
        state = self.registry.disk_state(disk)
        if state not in ("Unattached", "Reserved"):
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Disk '{disk.name}' cannot be resized while it is {state}: resizing "
                "is allowed only for unattached disks or when the VM is deallocated.",
            )
        return size
