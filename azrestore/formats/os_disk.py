"""The OS disk decision: the firmware a disk boots with, hence its Hyper-V generation,
and the OS family it holds, from what its partition table shows (the rules are listed in
:mod:`azrestore.formats.partitions`).

Pure. Where the table does not tell, :class:`OsDiskKind` says so (None), and each caller
keeps its own policy for that: a restore plan asks the user to say, a single managed-disk
upload falls back to generation V1 and no OS type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .filesystems import FS_FAMILY
from .layout import DiskLayout, Firmware, Generation, KnownFamily, OsFamily, Partition, Scheme
from .mbr import MbrEntry
from .partition_types import BIOS_BOOT_GUID, ESP_GUID, GPT_TYPES, MBR_ESP, MBR_TYPES_BY_TEXT


@dataclass(frozen=True, slots=True)
class OsDiskKind:
    """What a disk's layout says about it as an OS disk. ``family`` and ``generation``
    are None when the partition table does not tell."""

    family: KnownFamily | None
    generation: Generation | None
    #: It carries what UEFI boots from: an EFI system partition (GPT, or MBR type 0xEF).
    boots_uefi: bool
    #: It carries what BIOS boots from: an active MBR partition or boot code, a BIOS boot
    #: partition or a GPT partition with the legacy-BIOS-bootable attribute.
    boots_bios: bool


def os_disk_kind(layout: DiskLayout) -> OsDiskKind:
    """The OS family and generation of a disk, and which firmware it can boot with (a
    disk set up for both has an EFI system partition and a BIOS boot partition)."""
    return OsDiskKind(
        family=None if layout.os_family == "unknown" else layout.os_family,
        generation=layout.generation,
        boots_uefi=any(p.type in (ESP_GUID, f"0x{MBR_ESP:02x}") for p in layout.partitions),
        boots_bios=layout.firmware == "bios"
        or any(
            p.type == BIOS_BOOT_GUID or (layout.scheme == "gpt" and p.bootable)
            for p in layout.partitions
        ),
    )


def gpt_firmware(partitions: Sequence[Partition]) -> Firmware:
    """UEFI with an EFI system partition, else BIOS with a BIOS boot partition or a
    legacy-BIOS-bootable partition."""
    if any(p.type == ESP_GUID for p in partitions):
        return "uefi"
    if any(p.type == BIOS_BOOT_GUID or p.bootable for p in partitions):
        return "bios"
    return "unknown"


def mbr_firmware(entries: Sequence[MbrEntry], boot_code: bytes) -> Firmware:
    """BIOS with an active partition or boot code (the first 440 bytes of the first
    sector; the disk signature at 440 does not count), else UEFI with an 0xEF partition."""
    if any(e.active for e in entries) or any(boot_code[:440]):
        return "bios"
    if any(e.type == MBR_ESP for e in entries):
        return "uefi"
    return "unknown"


def generation_of(firmware: Firmware) -> Generation | None:
    """V2 for UEFI, V1 for BIOS, None when the firmware is unknown."""
    if firmware == "uefi":
        return "V2"
    if firmware == "bios":
        return "V1"
    return None


def _family_of(partition: Partition, scheme: Scheme) -> KnownFamily | None:
    if partition.filesystem is not None:
        return FS_FAMILY.get(partition.filesystem)
    types = GPT_TYPES if scheme == "gpt" else MBR_TYPES_BY_TEXT
    return types.get(partition.type, ("", None))[1]


def vote_os_family(
    partitions: Iterable[Partition], scheme: Scheme, warnings: list[str]
) -> OsFamily:
    """Each partition votes with its size: the file system found in it decides its vote,
    else its type does. The family with more bytes wins; both on one disk is warned of."""
    votes: dict[KnownFamily, int] = {"windows": 0, "linux": 0}
    for partition in partitions:
        family = _family_of(partition, scheme)
        if family is not None:
            # Count at least one byte, so that an empty partition still votes.
            votes[family] += max(partition.size, 1)
    if votes["windows"] and votes["linux"]:
        warnings.append("the disk holds both Windows and Linux partitions")
    if votes["windows"] > votes["linux"]:
        return "windows"
    if votes["linux"] > votes["windows"]:
        return "linux"
    return "unknown"


def whole_disk_family(filesystem: str | None) -> OsFamily:
    """The family a file system on the whole disk (no partition table) implies."""
    family = FS_FAMILY.get(filesystem) if filesystem else None
    return family or "unknown"
