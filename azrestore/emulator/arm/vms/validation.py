"""Validation of a VM body, the way Azure validates it: what a create asks for (size, OS
disk or image, network interfaces, data disks) and what an update may change (size,
network interfaces), checked before anything in the simulator changes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azrestore.emulator.arm.calls import Call
from azrestore.emulator.arm.clock import Clock
from azrestore.emulator.arm.errors import ArmError, missing_parameter
from azrestore.emulator.arm.request_bodies import choice, location_of, required
from azrestore.emulator.arm.resource_ids import id_key
from azrestore.emulator.arm.state.disks import DiskRecord
from azrestore.emulator.arm.state.registry import Registry
from azrestore.emulator.arm.state.vms import DataDisk, VmRecord
from azrestore.emulator.arm.vms.attachments import parse_data_disks, parse_nics
from azrestore.emulator.arm.vms.os_disk import OsDisk, attached_os_disk, image_os_disk
from azrestore.emulator.arm.vms.security import VmSecurity, vm_security
from azrestore.emulator.arm.vms.sizes import check_data_disk_count

__all__ = [
    "NewVm",
    "check_nic_change",
    "check_size_boots",
    "sanitise_os_profile",
    "validate_new_vm",
]


@dataclass
class NewVm:
    """A VM create request, validated: what the VM is made of."""

    location: str
    properties: Mapping[str, Any]
    vm_size: str
    os_spec: Mapping[str, Any]
    os_create_option: str
    os_disk: OsDisk
    os_profile: Any
    nics: list[tuple[str, bool]]
    data_disks: list[DataDisk]
    created: list[DiskRecord]
    """Disks the create makes (the OS disk from an image, empty data disks)."""
    security: VmSecurity


def _size_generations(vm_size: str) -> tuple[str, ...]:
    """Which Hyper-V generations a VM size boots (a small model of Azure's size table)."""
    size = vm_size.lower()
    if size.startswith("basic_a") or re.fullmatch(r"standard_a\d+", size):
        return ("V1",)
    # Arm64 sizes (a "p" in the features, e.g. Standard_D2ps_v5) boot Gen2 only.
    if re.fullmatch(r"standard_[a-z]+\d+[a-z]*p[a-z]*_v\d+", size):
        return ("V2",)
    return ("V1", "V2")


def check_size_boots(vm_size: str, generation: str, *, update: bool) -> None:
    """400 BadRequest when a VM size cannot boot the VM's Hyper-V generation."""
    if generation in _size_generations(vm_size):
        return
    if update:
        raise ArmError(
            400,
            "BadRequest",
            f"The selected VM size '{vm_size}' cannot boot Hypervisor Generation "
            f"'{generation[1:]}'. If this was an Update operation please select "
            f"a Hypervisor Generation '{generation[1:]}' VM Size. For more "
            "information, see https://aka.ms/azuregen2vm",
        )
    raise ArmError(
        400,
        "BadRequest",
        f"The selected VM size '{vm_size}' cannot boot Hypervisor Generation "
        f"'{generation[1:]}'. If this was a Create operation please check that the "
        "Hypervisor Generation of the Image matches the Hypervisor Generation of the "
        "selected VM Size. If this was an Update operation please select a Hypervisor "
        f"Generation '{generation[1:]}' VM Size. For more information, see "
        "https://aka.ms/azuregen2vm",
    )


def validate_new_vm(
    registry: Registry, clock: Clock, call: Call, name: str, vm_id: str, body: Mapping[str, Any]
) -> NewVm:
    """Check a create request; the disks it would make are returned, not yet registered."""
    assert call.resource_group is not None
    location = location_of(body)
    props = body.get("properties") or {}
    hardware = required(props, "hardwareProfile", "hardwareProfile")
    vm_size = str(required(hardware, "vmSize", "hardwareProfile.vmSize"))
    storage = required(props, "storageProfile", "storageProfile")
    image = storage.get("imageReference")
    os_spec = storage.get("osDisk") or ({"createOption": "FromImage"} if image else None)
    if os_spec is None:
        raise missing_parameter("storageProfile.osDisk")
    option = choice(
        required(os_spec, "createOption", "storageProfile.osDisk.createOption"),
        ("Attach", "FromImage"),
        "storageProfile.osDisk.createOption",
    )
    nics = parse_nics(registry, props.get("networkProfile"), vm_id)
    os_profile = props.get("osProfile")
    if option == "Attach":
        os_disk = attached_os_disk(registry, os_spec, os_profile, vm_id)
    else:
        os_disk = image_os_disk(registry, clock, call, name, storage, os_spec, os_profile, location)
    created = [os_disk.disk] if os_disk.created else []
    check_size_boots(vm_size, os_disk.generation, update=False)
    security = vm_security(props, os_disk, vm_size)
    data_disks, new_disks = parse_data_disks(
        registry,
        clock,
        call,
        name,
        storage.get("dataDisks") or [],
        vm_id,
        location,
        current=(),
        os_disk_id=os_disk.disk.id,
    )
    check_data_disk_count(vm_size, len(data_disks))
    created.extend(new_disks)
    return NewVm(
        location=location,
        properties=props,
        vm_size=vm_size,
        os_spec=os_spec,
        os_create_option=option,
        os_disk=os_disk,
        os_profile=os_profile,
        nics=nics,
        data_disks=data_disks,
        created=created,
        security=security,
    )


def check_nic_change(registry: Registry, vm: VmRecord, network: Any) -> list[tuple[str, bool]]:
    """The NICs an update's ``networkProfile`` asks for: adding or removing one needs the VM
    deallocated."""
    nics = parse_nics(registry, network, vm.id)
    if {id_key(n) for n, _ in nics} != {id_key(n) for n, _ in vm.nics} and (
        vm.power_state != "deallocated"
    ):
        raise ArmError(
            409,
            "OperationNotAllowed",
            "Network interfaces can only be added or removed while the VM is "
            "stopped (deallocated).",
        )
    return nics


def sanitise_os_profile(os_profile: Any) -> dict[str, Any] | None:
    """The osProfile as Azure echoes it: never the password or custom data."""
    if not isinstance(os_profile, Mapping):
        return None
    profile = {k: v for k, v in os_profile.items() if k not in ("adminPassword", "customData")}
    profile.setdefault("secrets", [])
    profile.setdefault("allowExtensionOperations", True)
    profile.setdefault("requireGuestProvisionSignal", True)
    return profile
