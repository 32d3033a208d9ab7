"""A VM's ``securityProfile`` checked as Azure checks it (Trusted Launch needs a V2 OS
disk and a size that takes it; UEFI settings only with it; an attached OS disk must carry
a security profile for a Trusted Launch VM and cannot go to a Standard one), and the
emulated firmware's secure boot of the OS disk (:mod:`..secure_boot`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.errors import ArmError, invalid_parameter
from azrestore.emulator.arm.request_bodies import optional_choice
from azrestore.emulator.arm.resource_ids import id_key
from azrestore.emulator.arm.secure_boot import secure_boot_failure
from azrestore.emulator.arm.state.vms import VmRecord
from azrestore.emulator.arm.vms.os_disk import OsDisk
from azrestore.emulator.arm.vms.sizes import trusted_launch_capable

__all__ = ["VmSecurity", "boot_with_secure_boot", "vm_security"]


@dataclass(frozen=True)
class VmSecurity:
    """What a VM's securityProfile asks for."""

    security_type: str | None
    secure_boot: bool
    vtpm: bool


def _flag(settings: Mapping[str, Any], name: str) -> bool:
    value = settings.get(name, False)
    if not isinstance(value, bool):
        raise invalid_parameter(
            f"securityProfile.uefiSettings.{name}", f"{name} must be a boolean."
        )
    return value


def vm_security(props: Mapping[str, Any], os_disk: OsDisk, vm_size: str) -> VmSecurity:
    """The VM's security, refused with Azure's codes where Azure refuses it."""
    profile = props.get("securityProfile") or {}
    if not isinstance(profile, Mapping):
        raise invalid_parameter("securityProfile", "securityProfile must be an object.")
    kind = optional_choice(
        profile.get("securityType"),
        ("TrustedLaunch", "ConfidentialVM", "Standard"),
        "securityProfile.securityType",
    )
    settings = profile.get("uefiSettings") or {}
    if not isinstance(settings, Mapping):
        raise invalid_parameter("securityProfile.uefiSettings", "uefiSettings must be an object.")
    secure_boot, vtpm = _flag(settings, "secureBootEnabled"), _flag(settings, "vTpmEnabled")
    if kind == "ConfidentialVM":
        raise ArmError(
            400,
            "BadRequest",
            f"The VM size '{vm_size}' is not supported for creation of VMs and Virtual Machine"
            " Scale Set with 'ConfidentialVM' security type.",
        )
    if kind in (None, "Standard") and (secure_boot or vtpm):
        raise invalid_parameter(
            "securityProfile.uefiSettings",
            "The property 'securityProfile.uefiSettings' can be set only when"
            " 'securityProfile.securityType' is TrustedLaunch or ConfidentialVM.",
        )
    disk = os_disk.disk
    if kind == "TrustedLaunch":
        if not trusted_launch_capable(vm_size):
            raise ArmError(
                400,
                "BadRequest",
                f"The VM size '{vm_size}' is not supported for creation of VMs and Virtual"
                " Machine Scale Set with 'TrustedLaunch' security type. For more information,"
                " see https://aka.ms/TrustedLaunch-FAQ",
            )
        if os_disk.generation != "V2":
            raise ArmError(
                400,
                "BadRequest",
                "Use of TrustedLaunch setting is not supported for the provided image or"
                f" disk '{disk.name}' (Hypervisor Generation '{os_disk.generation[1:]}')."
                " Please select a Trusted Launch supported Gen2 OS disk. For more"
                " information, see https://aka.ms/TrustedLaunch-FAQ",
            )
        if not os_disk.created and disk.security_type != "TrustedLaunch":
            raise ArmError(
                400,
                "BadRequest",
                f"The OS disk '{disk.name}' has no security profile with security type"
                " 'TrustedLaunch': it cannot be attached to a VM with security type"
                " 'TrustedLaunch'.",
            )
        return VmSecurity("TrustedLaunch", secure_boot, vtpm)
    if not os_disk.created and disk.security_type is not None:
        raise ArmError(
            400,
            "BadRequest",
            f"The OS disk '{disk.name}' has security type '{disk.security_type}': it can be"
            f" attached only to a VM with security type '{disk.security_type}'.",
        )
    return VmSecurity(kind, False, False)


async def boot_with_secure_boot(core: Core, vm: VmRecord) -> None:
    """Start the firmware: with secure boot on, an OS disk attached whose EFI system
    partition holds no signed loader does not boot (``vm.boot_failure`` says why)."""
    vm.boot_failure = None
    if not vm.secure_boot or vm.os_disk_create_option == "FromImage":
        return
    disk = core.registry.disks.get(id_key(vm.os_disk_id))
    if disk is None or disk.container is None or not disk.blob_ready:
        vm.boot_failure = "secure boot: the OS disk holds nothing to boot"
        return
    storage = core.disk_storage()
    container = disk.container
    size = disk.disk_size_bytes

    async def read(offset: int, length: int) -> bytes:
        if offset >= size or length <= 0:
            return b"\x00" * max(length, 0)
        wanted = min(length, size - offset)
        return (await storage.read_range(container, offset, wanted)).ljust(length, b"\x00")

    failure = await secure_boot_failure(read, size)
    vm.boot_failure = None if failure is None else f"secure boot violation: {failure}"
