"""A virtual machine as ARM answers it."""

from __future__ import annotations

import math
from typing import Any, Final

from azrestore.emulator.arm.clock import iso
from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.disks.representation import GiB
from azrestore.emulator.arm.resource_ids import id_key
from azrestore.emulator.arm.state.registry import Registry
from azrestore.emulator.arm.state.vms import VmRecord
from azrestore.emulator.arm.vms.instance_view import instance_view_body
from azrestore.emulator.arm.vms.resources import VM_TYPE

__all__ = ["MODELLED", "vm_body"]

#: Properties the simulator models itself; anything else in a request is echoed back.
MODELLED: Final = frozenset(
    {
        "hardwareProfile",
        "storageProfile",
        "osProfile",
        "networkProfile",
        "provisioningState",
        "instanceView",
        "vmId",
        "timeCreated",
        "userData",
        "securityProfile",
    }
)


def _storage_type(registry: Registry, disk_id: str) -> str:
    disk = registry.disks.get(id_key(disk_id))
    return disk.sku if disk is not None else "Standard_LRS"


def _disk_size_gb(registry: Registry, disk_id: str) -> int | None:
    disk = registry.disks.get(id_key(disk_id))
    return None if disk is None else math.ceil(disk.disk_size_bytes / GiB)


def vm_body(core: Core, vm: VmRecord, *, expand: bool = False) -> dict[str, Any]:
    """The VM as ARM answers it (``expand``: with its instance view)."""
    registry = core.registry
    os_disk: dict[str, Any] = {
        "osType": vm.os_type,
        "name": vm.os_disk_name,
        "createOption": vm.os_disk_create_option,
        "caching": vm.os_disk_caching,
        "managedDisk": {
            "id": vm.os_disk_id,
            "storageAccountType": _storage_type(registry, vm.os_disk_id),
        },
        "deleteOption": vm.os_disk_delete_option,
    }
    size_gb = _disk_size_gb(registry, vm.os_disk_id)
    if size_gb is not None:
        os_disk["diskSizeGB"] = size_gb
    storage: dict[str, Any] = {
        "osDisk": os_disk,
        "dataDisks": [
            {
                "lun": d.lun,
                "name": d.name,
                "createOption": d.create_option,
                "caching": d.caching,
                "managedDisk": {
                    "id": d.disk_id,
                    "storageAccountType": _storage_type(registry, d.disk_id),
                },
                "deleteOption": d.delete_option,
                "diskSizeGB": _disk_size_gb(registry, d.disk_id),
                "toBeDetached": False,
            }
            for d in sorted(vm.data_disks, key=lambda d: d.lun)
        ],
    }
    if vm.image_reference is not None:
        storage["imageReference"] = dict(vm.image_reference)
    properties: dict[str, Any] = {
        **vm.extra,
        "vmId": vm.vm_uuid,
        "hardwareProfile": {"vmSize": vm.vm_size},
        "storageProfile": storage,
        "networkProfile": {
            "networkInterfaces": [
                {"id": nic_id, "properties": {"primary": primary}} for nic_id, primary in vm.nics
            ]
        },
        "provisioningState": vm.provisioning_state,
        "timeCreated": iso(vm.time_created),
    }
    if vm.os_profile is not None:
        properties["osProfile"] = dict(vm.os_profile)
    if vm.security_type is not None:
        profile: dict[str, Any] = {"securityType": vm.security_type}
        if vm.security_type == "TrustedLaunch":
            profile["uefiSettings"] = {
                "secureBootEnabled": vm.secure_boot,
                "vTpmEnabled": vm.vtpm,
            }
        properties["securityProfile"] = profile
    if expand:
        properties["instanceView"] = instance_view_body(core, vm)
    result: dict[str, Any] = {
        "id": vm.id,
        "name": vm.name,
        "type": VM_TYPE,
        "location": vm.location,
        "properties": properties,
    }
    if vm.tags:
        result["tags"] = dict(vm.tags)
    return result
