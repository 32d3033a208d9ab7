"""What a disk request body may ask for, checked the way Azure checks it: create options,
SKUs, sizes (Azure's upload size rules), generations, OS types, immutable properties and
access grants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from azrestore.emulator.arm.calls import Call
from azrestore.emulator.arm.clock import Clock
from azrestore.emulator.arm.disks.representation import GiB, disk_id
from azrestore.emulator.arm.errors import ArmError, invalid_parameter
from azrestore.emulator.arm.request_bodies import (
    choice,
    location_of,
    optional_choice,
    required,
    tags_of,
    whole_number,
)
from azrestore.emulator.arm.resource_ids import new_id
from azrestore.emulator.arm.state.disks import DiskRecord
from azrestore.emulator.arm.vhd_check import FOOTER_BYTES

__all__ = [
    "MODELLED",
    "check_upload_size",
    "empty_disk_size",
    "generation_of",
    "grant_request",
    "new_disk",
    "os_type_of",
    "property_change",
    "same",
    "upload_size",
]

MiB: Final = 1024**2
MIN_UPLOAD: Final = 20 * MiB + FOOTER_BYTES  # 20,972,032
#: Azure's bound: 32,767 GiB + 512 (which Azure's own message calls "32 TiB + 512").
MAX_UPLOAD: Final = 32_767 * GiB + FOOTER_BYTES  # 35,183,298,347,520
MAX_DISK_GB: Final = 32_767
MAX_GRANT_SECONDS: Final = 60 * 24 * 3600
_SKUS: Final[Mapping[str, str]] = {
    "standard_lrs": "Standard_LRS",
    "premium_lrs": "Premium_LRS",
    "standardssd_lrs": "StandardSSD_LRS",
    "ultrassd_lrs": "UltraSSD_LRS",
    "premium_zrs": "Premium_ZRS",
    "standardssd_zrs": "StandardSSD_ZRS",
    "premiumv2_lrs": "PremiumV2_LRS",
}
_CREATE_OPTIONS: Final = ("Empty", "Upload", "Import")
#: Properties the simulator models itself; anything else in a request is echoed back.
MODELLED: Final = frozenset(
    {
        "creationData",
        "diskSizeGB",
        "diskSizeBytes",
        "osType",
        "hyperVGeneration",
        "provisioningState",
        "diskState",
        "uniqueId",
        "timeCreated",
        "securityProfile",
    }
)
#: Disk security types (``securityProfile.securityType``).
SECURITY_TYPES: Final = (
    "TrustedLaunch",
    "ConfidentialVM_VMGuestStateOnlyEncryptedWithPlatformKey",
    "ConfidentialVM_DiskEncryptedWithPlatformKey",
    "ConfidentialVM_DiskEncryptedWithCustomerKey",
    "ConfidentialVM_NonPersistedTPM",
)


def check_upload_size(size: int) -> None:
    """Azure's rules for ``uploadSizeBytes`` (400 BadRequest, recorded wording)."""
    if not MIN_UPLOAD <= size <= MAX_UPLOAD:
        raise ArmError(
            400,
            "BadRequest",
            f"The upload size in bytes {size} must be between {MIN_UPLOAD} bytes (20 MiB + "
            f"512 bytes for the VHD footer) and {MAX_UPLOAD} bytes (32 TiB + 512 bytes for "
            "the VHD footer).",
        )
    if (size - FOOTER_BYTES) % MiB:
        raise ArmError(
            400,
            "BadRequest",
            f"The upload size in bytes {size} - 512 bytes for the VHD footer "
            f"({size - FOOTER_BYTES} in this case) must be a multiple of MiB.",
        )


def generation_of(props: Mapping[str, Any]) -> str | None:
    """The requested ``hyperVGeneration`` (V1, V2 or none)."""
    return optional_choice(props.get("hyperVGeneration"), ("V1", "V2"), "disk.hyperVGeneration")


def os_type_of(props: Mapping[str, Any]) -> str | None:
    """The requested ``osType`` (Windows, Linux or none)."""
    return optional_choice(props.get("osType"), ("Windows", "Linux"), "disk.osType")


def security_type_of(props: Mapping[str, Any], generation: str | None) -> str | None:
    """The requested ``securityProfile.securityType``: only for a V2 disk (400 otherwise)."""
    profile = props.get("securityProfile")
    if profile is None:
        return None
    if not isinstance(profile, Mapping):
        raise invalid_parameter("disk.securityProfile", "securityProfile must be an object.")
    kind = optional_choice(
        profile.get("securityType"), SECURITY_TYPES, "disk.securityProfile.securityType"
    )
    if kind is not None and generation != "V2":
        raise ArmError(
            400,
            "BadRequest",
            f"The security type '{kind}' can be set only for a disk with HyperVGeneration"
            f" V2; this disk's is {generation or 'not set (V1)'}.",
            target="disk.securityProfile.securityType",
        )
    return kind


def new_disk(
    call: Call, name: str, body: Mapping[str, Any], clock: Clock
) -> tuple[DiskRecord, Mapping[str, Any]]:
    """The record a create request describes (no size yet), and its ``creationData``."""
    location = location_of(body)
    props = body.get("properties") or {}
    creation = required(props, "creationData", "disk.creationData")
    option = choice(
        required(creation, "createOption", "disk.creationData.createOption"),
        _CREATE_OPTIONS,
        "disk.creationData.createOption",
    )
    generation = generation_of(props)
    os_type = os_type_of(props)
    sku_name = ((body.get("sku") or {}).get("name")) or "Standard_LRS"
    sku = _SKUS.get(str(sku_name).lower())
    if sku is None:
        raise invalid_parameter("disk.sku.name", f"The SKU '{sku_name}' is not valid.")
    assert call.resource_group is not None
    disk = DiskRecord(
        id=disk_id(call, name),
        name=name,
        subscription=call.subscription,
        resource_group=call.resource_group,
        location=location,
        tags=tags_of(body),
        sku=sku,
        create_option=option,
        disk_size_bytes=0,
        hyper_v_generation=generation,
        os_type=os_type,
        unique_id=new_id(),
        time_created=clock.now(),
        extra={k: v for k, v in props.items() if k not in MODELLED},
        security_type=security_type_of(props, generation),
    )
    return disk, creation


def upload_size(creation: Mapping[str, Any]) -> int:
    """An Upload disk's ``uploadSizeBytes``, checked against Azure's rules."""
    size = whole_number(
        required(creation, "uploadSizeBytes", "disk.creationData.uploadSizeBytes"),
        "disk.creationData.uploadSizeBytes",
    )
    check_upload_size(size)
    return size


def empty_disk_size(props: Mapping[str, Any]) -> int:
    """An Empty disk's size in bytes from ``diskSizeGB`` (1 to 32,767 GB)."""
    size_gb = whole_number(required(props, "diskSizeGB", "disk.diskSizeGB"), "disk.diskSizeGB")
    if not 1 <= size_gb <= MAX_DISK_GB:
        raise invalid_parameter(
            "disk.diskSizeGB",
            f"The specified disk size {size_gb} GB is not between 1 and {MAX_DISK_GB} GB.",
        )
    return size_gb * GiB


def grant_request(body: Mapping[str, Any]) -> tuple[str, int]:
    """A beginGetAccess body's ``access`` and ``durationInSeconds`` (up to 60 days);
    ``getSecureVMGuestStateSAS`` is checked against the disk by the caller."""
    access = choice(
        required(body, "access", "grantAccessData.access"),
        ("None", "Read", "Write"),
        "grantAccessData.access",
    )
    seconds = whole_number(
        required(body, "durationInSeconds", "grantAccessData.durationInSeconds"),
        "grantAccessData.durationInSeconds",
    )
    if not 1 <= seconds <= MAX_GRANT_SECONDS:
        raise invalid_parameter(
            "grantAccessData.durationInSeconds",
            f"The value {seconds} of parameter 'durationInSeconds' is not between 1 and "
            f"{MAX_GRANT_SECONDS} (60 days).",
        )
    return access, seconds


def same(requested: Any, current: Any, name: str) -> None:
    """409 PropertyChangeNotAllowed when a request changes an immutable property."""
    if requested is None:
        return
    if isinstance(requested, str) and isinstance(current, str):
        if requested.lower() == current.lower():
            return
    elif requested == current:
        return
    raise property_change(name)


def property_change(name: str) -> ArmError:
    """409 PropertyChangeNotAllowed for ``name``."""
    return ArmError(
        409,
        "PropertyChangeNotAllowed",
        f"Changing property '{name}' is not allowed.",
        target=name,
    )
