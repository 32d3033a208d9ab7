"""A VM's OS disk as a create request asks for it: an existing disk to attach, or a disk
made from a marketplace image; and swapping the OS disk of a deallocated VM."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azrestore.emulator.arm.calls import Call
from azrestore.emulator.arm.clock import Clock
from azrestore.emulator.arm.disks.representation import GiB
from azrestore.emulator.arm.errors import ArmError, invalid_parameter, missing_parameter
from azrestore.emulator.arm.request_bodies import choice, required
from azrestore.emulator.arm.state.disks import DiskRecord
from azrestore.emulator.arm.state.registry import Registry
from azrestore.emulator.arm.state.vms import VmRecord
from azrestore.emulator.arm.vms.attachments import check_attachable, new_disk_id, vm_made_disk
from azrestore.emulator.arm.vms.resources import disk_by_id

__all__ = ["OsDisk", "attached_os_disk", "check_os_disk_swap", "image_os_disk"]


@dataclass
class OsDisk:
    """The OS disk of a VM to create, and what it tells about the VM."""

    disk: DiskRecord
    os_type: str
    generation: str
    image_reference: dict[str, Any] | None
    created: bool
    """Whether the disk is new (made from the image), to be added with the VM."""


def _gen2_image(sku: str) -> bool:
    sku = sku.lower()
    return "gen2" in sku or sku.endswith("-g2") or "gensecond" in sku


def attached_os_disk(
    registry: Registry, os_spec: Mapping[str, Any], os_profile: Any, vm_id: str
) -> OsDisk:
    """An existing disk attached as the OS disk (createOption Attach): no osProfile, and an
    OS type the disk has or the request gives, which must agree."""
    if os_profile is not None:
        raise invalid_parameter("osProfile", "Parameter 'osProfile' is not allowed.")
    managed = os_spec.get("managedDisk") or {}
    disk = disk_by_id(
        registry, str(required(managed, "id", "storageProfile.osDisk.managedDisk.id"))
    )
    check_attachable(registry, disk, vm_id)
    requested_os = os_spec.get("osType")
    if disk.os_type is None and requested_os is None:
        raise missing_parameter("storageProfile.osDisk.osType")
    os_type = choice(
        disk.os_type or requested_os, ("Windows", "Linux"), "storageProfile.osDisk.osType"
    )
    if requested_os is not None and str(requested_os).lower() != os_type.lower():
        raise invalid_parameter(
            "storageProfile.osDisk.osType",
            f"The osType '{requested_os}' does not match the OS type '{os_type}' of "
            f"disk '{disk.name}'.",
        )
    generation = disk.hyper_v_generation or "V1"
    return OsDisk(disk, os_type, generation, None, created=False)


def image_os_disk(
    registry: Registry,
    clock: Clock,
    call: Call,
    vm_name: str,
    storage: Mapping[str, Any],
    os_spec: Mapping[str, Any],
    os_profile: Any,
    location: str,
) -> OsDisk:
    """A new OS disk from a marketplace image (createOption FromImage): the image's full
    URN and an osProfile with an admin user are required."""
    image = storage.get("imageReference")
    if image is None:
        raise missing_parameter("storageProfile.imageReference")
    if image.get("id"):
        raise invalid_parameter(
            "storageProfile.imageReference.id",
            "Custom and gallery images are not simulated: use a marketplace image "
            "(publisher, offer, sku, version).",
        )
    urn = [
        str(required(image, part, f"storageProfile.imageReference.{part}"))
        for part in ("publisher", "offer", "sku", "version")
    ]
    if os_profile is None:
        raise missing_parameter("osProfile")
    required(os_profile, "adminUsername", "osProfile.adminUsername")
    windows = "windows" in (urn[0] + urn[1]).lower()
    os_type = choice(
        os_spec.get("osType") or ("Windows" if windows else "Linux"),
        ("Windows", "Linux"),
        "storageProfile.osDisk.osType",
    )
    generation = "V2" if _gen2_image(urn[2]) else "V1"
    image_reference = {
        "publisher": urn[0],
        "offer": urn[1],
        "sku": urn[2],
        "version": urn[3],
        "exactVersion": urn[3] if urn[3].lower() != "latest" else "1.0.20250101",
    }
    disk = _disk_from_image(
        registry, clock, call, vm_name, os_spec, location, os_type, generation, urn
    )
    return OsDisk(disk, os_type, generation, image_reference, created=True)


def _disk_from_image(
    registry: Registry,
    clock: Clock,
    call: Call,
    vm_name: str,
    os_spec: Mapping[str, Any],
    location: str,
    os_type: str,
    generation: str,
    urn: list[str],
) -> DiskRecord:
    assert call.resource_group is not None
    name = str(os_spec.get("name") or f"{vm_name}_OsDisk_1_{uuid.uuid4().hex}")
    disk_id = new_disk_id(registry, call, name)
    size_gb = os_spec.get("diskSizeGB") or (127 if os_type == "Windows" else 30)
    storage_type = (os_spec.get("managedDisk") or {}).get("storageAccountType") or "Standard_LRS"
    image_id = (
        f"/Subscriptions/{call.subscription}/Providers/Microsoft.Compute/Locations/"
        f"{location.replace(' ', '').lower()}/Publishers/{urn[0]}/ArtifactTypes/VMImage/"
        f"Offers/{urn[1]}/Skus/{urn[2]}/Versions/{urn[3]}"
    )
    return vm_made_disk(
        clock,
        call,
        disk_id,
        name,
        location,
        sku=str(storage_type),
        create_option="FromImage",
        disk_size_bytes=int(size_gb) * GiB,
        hyper_v_generation=generation,
        os_type=os_type,
        image_reference={"id": image_id},
    )


def check_os_disk_swap(registry: Registry, vm: VmRecord, new_os_id: str) -> DiskRecord:
    """The disk an update swaps in as the OS disk: only while the VM is deallocated, and
    of the VM's Hyper-V generation."""
    swap_to = disk_by_id(registry, new_os_id)
    if vm.power_state != "deallocated":
        raise ArmError(
            409,
            "OperationNotAllowed",
            "Swapping the OS disk is only allowed when the VM is stopped (deallocated).",
        )
    check_attachable(registry, swap_to, vm.id)
    if (swap_to.hyper_v_generation or "V1") != vm.hyper_v_generation:
        raise ArmError(
            400,
            "BadRequest",
            "Swapping OS Disk is not supported since HyperVisor property on the OSDisk "
            "and VM do not match. Please make sure the HyperVisor property on the "
            f"OSDisk is HyperVisor Generation '{vm.hyper_v_generation}'",
        )
    return swap_to
