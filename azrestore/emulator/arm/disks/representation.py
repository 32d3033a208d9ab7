"""A managed disk as ARM answers it, and how a request finds one."""

from __future__ import annotations

import math
from typing import Any, Final

from azrestore.emulator.arm.calls import Call
from azrestore.emulator.arm.clock import iso
from azrestore.emulator.arm.errors import concurrent_conflict, resource_not_found
from azrestore.emulator.arm.resource_ids import arm_id, id_key
from azrestore.emulator.arm.state.disks import DiskRecord
from azrestore.emulator.arm.state.registry import Registry

__all__ = ["DISK_TYPE", "GiB", "disk_body", "disk_id", "find_disk", "refuse_if_busy"]

GiB: Final = 1024**3
DISK_TYPE: Final = "Microsoft.Compute/disks"


def disk_id(call: Call, name: str) -> str:
    """The id of the disk ``name`` in the call's resource group."""
    assert call.resource_group is not None
    return arm_id(call.subscription, call.resource_group, "Microsoft.Compute", "disks", name)


def find_disk(registry: Registry, call: Call, name: str) -> DiskRecord:
    """The disk, or 404 ResourceNotFound."""
    disk = registry.disks.get(id_key(disk_id(call, name)))
    if disk is None:
        assert call.resource_group is not None
        raise resource_not_found(DISK_TYPE, name, call.resource_group)
    return disk


def refuse_if_busy(disk: DiskRecord) -> None:
    """409 Conflict while another operation works on the disk."""
    if disk.busy:
        raise concurrent_conflict()


def disk_body(registry: Registry, disk: DiskRecord) -> dict[str, Any]:
    """The disk as ARM answers it."""
    creation: dict[str, Any] = {"createOption": disk.create_option}
    if disk.upload_size_bytes is not None:
        creation["uploadSizeBytes"] = disk.upload_size_bytes
    if disk.source_uri is not None:
        creation["sourceUri"] = disk.source_uri
    if disk.storage_account_id is not None:
        creation["storageAccountId"] = disk.storage_account_id
    if disk.image_reference is not None:
        creation["imageReference"] = disk.image_reference
    properties: dict[str, Any] = {
        **disk.extra,
        "creationData": creation,
        "diskSizeGB": math.ceil(disk.disk_size_bytes / GiB),
        "diskSizeBytes": disk.disk_size_bytes,
        "uniqueId": disk.unique_id,
        "provisioningState": disk.provisioning_state,
        "timeCreated": iso(disk.time_created),
        "diskState": registry.disk_state(disk),
    }
    properties.setdefault("encryption", {"type": "EncryptionAtRestWithPlatformKey"})
    properties.setdefault("networkAccessPolicy", "AllowAll")
    properties.setdefault("publicNetworkAccess", "Enabled")
    if disk.os_type is not None:
        properties["osType"] = disk.os_type
    if disk.hyper_v_generation is not None:
        properties["hyperVGeneration"] = disk.hyper_v_generation
    if disk.security_type is not None:
        properties["securityProfile"] = {"securityType": disk.security_type}
    result: dict[str, Any] = {
        "id": disk.id,
        "name": disk.name,
        "type": DISK_TYPE,
        "location": disk.location,
        "sku": {"name": disk.sku, "tier": "Premium" if "Premium" in disk.sku else "Standard"},
        "properties": properties,
    }
    if disk.tags:
        result["tags"] = dict(disk.tags)
    if disk.managed_by is not None:
        result["managedBy"] = disk.managed_by
    return result
