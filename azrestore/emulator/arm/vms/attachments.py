"""What a VM body attaches, checked the way Azure checks it: data disks (existing ones, or
new empty ones to create), network interfaces, and whether a disk may be attached."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final

from azrestore.emulator.arm.calls import Call
from azrestore.emulator.arm.clock import Clock
from azrestore.emulator.arm.disks.representation import GiB, disk_id
from azrestore.emulator.arm.errors import (
    ArmError,
    concurrent_conflict,
    invalid_parameter,
    missing_parameter,
)
from azrestore.emulator.arm.request_bodies import choice, required
from azrestore.emulator.arm.resource_ids import id_key
from azrestore.emulator.arm.state.disks import DiskRecord
from azrestore.emulator.arm.state.registry import Registry
from azrestore.emulator.arm.state.vms import DataDisk
from azrestore.emulator.arm.vms.resources import disk_by_id

__all__ = ["check_attachable", "parse_data_disks", "parse_nics"]

MAX_LUN: Final = 63


def check_attachable(registry: Registry, disk: DiskRecord, vm_id: str) -> None:
    """Refuse a disk another VM owns, one being worked on, uploading, shared or failed."""
    if disk.managed_by is not None and id_key(disk.managed_by) != id_key(vm_id):
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"Disk '{disk.id}' cannot be attached as the disk is already owned by VM "
            f"'{disk.managed_by}'.",
        )
    if disk.busy:
        raise concurrent_conflict()
    state = registry.disk_state(disk)
    if state in ("ReadyToUpload", "ActiveUpload", "ActiveSAS"):
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"Disk '{disk.id}' cannot be attached because it is in state '{state}'. "
            "Complete the upload or revoke access (EndGetAccess) first.",
        )
    if disk.provisioning_state == "Failed":
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"Disk '{disk.id}' cannot be attached because its provisioning failed.",
        )


def new_disk_id(registry: Registry, call: Call, name: str) -> str:
    """The id of the disk ``name`` that a VM's request makes; 409 Conflict if one exists (a
    VM takes an existing disk only with createOption Attach)."""
    assert call.resource_group is not None
    new_id = disk_id(call, name)
    if id_key(new_id) in registry.disks:
        raise ArmError(
            409,
            "Conflict",
            f"Disk {name} already exists in resource group {call.resource_group.upper()}. "
            "Only CreateOption.Attach is supported.",
        )
    return new_id


def vm_made_disk(
    clock: Clock,
    call: Call,
    disk_id: str,
    name: str,
    location: str,
    *,
    sku: str,
    create_option: str,
    disk_size_bytes: int,
    hyper_v_generation: str | None = None,
    os_type: str | None = None,
    image_reference: dict[str, Any] | None = None,
) -> DiskRecord:
    """The record of a disk that a VM's request makes (see :func:`new_disk_id`): untagged,
    in the call's resource group, created now."""
    assert call.resource_group is not None
    return DiskRecord(
        id=disk_id,
        name=name,
        subscription=call.subscription,
        resource_group=call.resource_group,
        location=location,
        tags={},
        sku=sku,
        create_option=create_option,
        disk_size_bytes=disk_size_bytes,
        hyper_v_generation=hyper_v_generation,
        os_type=os_type,
        unique_id=str(uuid.uuid4()),
        time_created=clock.now(),
        image_reference=image_reference,
    )


def parse_nics(registry: Registry, network: Any, vm_id: str) -> list[tuple[str, bool]]:
    """The NICs (id, primary) a ``networkProfile`` asks for; each must exist and be free."""
    if not isinstance(network, Mapping):
        raise missing_parameter("networkProfile")
    entries = network.get("networkInterfaces") or []
    if not entries:
        raise missing_parameter("networkProfile.networkInterfaces")
    nics: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        nic_id = str(required(entry, "id", f"networkProfile.networkInterfaces[{index}].id"))
        nic = registry.nics.get(id_key(nic_id))
        if nic is None:
            raise ArmError(404, "NotFound", f"Resource {nic_id} not found.")
        if id_key(nic_id) in seen:
            raise invalid_parameter(
                "networkProfile.networkInterfaces",
                f"Network interface {nic_id} is referenced more than once.",
            )
        seen.add(id_key(nic_id))
        if nic.vm_id is not None and id_key(nic.vm_id) != id_key(vm_id):
            raise ArmError(
                400,
                "NicInUse",
                f"Network Interface {nic.id} is used by existing resource {nic.vm_id}. In "
                "order to use it, it must be dissociated from that resource.",
            )
        primary = bool((entry.get("properties") or {}).get("primary", len(entries) == 1))
        nics.append((nic.id, primary))
    if len(nics) > 1 and sum(primary for _, primary in nics) != 1:
        raise invalid_parameter(
            "networkProfile.networkInterfaces",
            "Virtual machine must have exactly one network interface set as primary.",
        )
    if len(nics) == 1:
        nics = [(nics[0][0], True)]
    return nics


def parse_data_disks(
    registry: Registry,
    clock: Clock,
    call: Call,
    vm_name: str,
    entries: Any,
    vm_id: str,
    location: str,
    *,
    current: tuple[DataDisk, ...],
    os_disk_id: str,
) -> tuple[list[DataDisk], list[DiskRecord]]:
    """The data disks a request asks for (detached ones left out), and disks to create."""
    assert call.resource_group is not None
    if not isinstance(entries, list):
        raise invalid_parameter("storageProfile.dataDisks", "dataDisks must be a list.")
    attached = {id_key(d.disk_id): d for d in current}
    result: list[DataDisk] = []
    created: list[DiskRecord] = []
    luns: set[int] = set()
    disk_ids: set[str] = set()
    for index, entry in enumerate(entries):
        path = f"storageProfile.dataDisks[{index}]"
        if entry.get("toBeDetached"):
            continue
        lun_value = required(entry, "lun", f"{path}.lun")
        if isinstance(lun_value, bool) or not isinstance(lun_value, int):
            raise invalid_parameter(f"{path}.lun", f"The value '{lun_value}' of LUN is not valid.")
        lun = int(lun_value)
        if not 0 <= lun <= MAX_LUN:
            raise invalid_parameter(f"{path}.lun", f"The LUN {lun} is not between 0 and {MAX_LUN}.")
        if lun in luns:
            raise invalid_parameter(f"{path}.lun", f"A disk at LUN {lun} already exists.")
        luns.add(lun)
        option = choice(
            required(entry, "createOption", f"{path}.createOption"),
            ("Attach", "Empty"),
            f"{path}.createOption",
        )
        caching = str(entry.get("caching") or "None")
        delete_option = str(entry.get("deleteOption") or "Detach")
        managed = entry.get("managedDisk") or {}
        if option == "Attach" or managed.get("id"):
            disk = disk_by_id(registry, str(required(managed, "id", f"{path}.managedDisk.id")))
            if id_key(disk.id) not in attached:
                check_attachable(registry, disk, vm_id)
            if id_key(disk.id) in disk_ids or id_key(disk.id) == id_key(os_disk_id):
                raise invalid_parameter(
                    f"{path}.managedDisk.id", f"Disk '{disk.id}' is referenced more than once."
                )
            disk_ids.add(id_key(disk.id))
            previous = attached.get(id_key(disk.id))
            result.append(
                DataDisk(
                    lun=lun,
                    disk_id=disk.id,
                    name=str(entry.get("name") or disk.name),
                    create_option=previous.create_option if previous else "Attach",
                    caching=caching,
                    delete_option=delete_option,
                )
            )
            continue
        size_gb = required(entry, "diskSizeGB", f"{path}.diskSizeGB")
        name = str(entry.get("name") or f"{vm_name}_DataDisk_{lun}_{uuid.uuid4().hex}")
        disk_id = new_disk_id(registry, call, name)
        storage_type = str(managed.get("storageAccountType") or "Standard_LRS")
        created.append(
            vm_made_disk(
                clock,
                call,
                disk_id,
                name,
                location,
                sku=storage_type,
                create_option="Empty",
                disk_size_bytes=int(size_gb) * GiB,
            )
        )
        result.append(
            DataDisk(
                lun=lun,
                disk_id=disk_id,
                name=name,
                create_option="Empty",
                caching=caching,
                delete_option=delete_option,
            )
        )
    return result, created
