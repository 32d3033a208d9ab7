"""Partition tables (GPT, MBR with logical partitions) and file-system sniffing.

Pure: the caller passes ``read(offset, length) -> bytes`` (short at the end of the disk)
and the disk's size. From the layout we guess what Azure needs to know about an OS disk:
the firmware it boots with (hence the VM generation) and the OS family.

Rules, in short:

* A valid GPT header at LBA 1 behind a protective (or hybrid) MBR, i.e. one with a
  0xEE entry, makes the disk GPT; the MBR's other entries are then ignored. Without a
  0xEE entry an MBR wins and a leftover GPT header is reported as a warning; with no MBR
  at all a GPT is still read (with a warning). A damaged primary GPT header falls back to
  the backup in the last sector. Sectors are 512 bytes (what Azure disks use). A disk
  whose first sector is a file system's boot sector (NTFS, FAT, exFAT carry 0x55AA too)
  has no table: scheme ``none``, and ``filesystem`` names what is on the whole disk.
* firmware: ``uefi`` for a GPT disk with an EFI system partition (or an MBR disk with an
  0xEF partition and no BIOS boot code), ``bios`` for a GPT disk with a BIOS boot
  partition or legacy-bootable attribute, and for an MBR disk with an active partition or
  boot code (the first 440 bytes; the disk signature at 440 does not count).
  generation: ``V2`` for uefi, ``V1`` for bios.
* os_family: each partition votes with its size. A file system found in it decides its
  vote (ntfs/refs/BitLocker: windows; ext*/xfs/btrfs/LVM/swap/LUKS: linux; FAT and exFAT:
  neither), so a "Microsoft basic data" partition holding ext4 votes linux, as old Linux
  installers used that type. Only when nothing is recognised inside does the partition
  type vote (Microsoft reserved/basic data/recovery, MBR 0x07: windows; Linux types,
  BIOS boot, MBR 0x83/0x8e/0x82/0xfd: linux). The family with more bytes wins; a disk
  with both gets a warning.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

Reader = Callable[[int, int], bytes]
Scheme = Literal["gpt", "mbr", "none"]
Firmware = Literal["uefi", "bios", "unknown"]
OsFamily = Literal["windows", "linux", "unknown"]
Generation = Literal["V1", "V2"]

SECTOR = 512
#: Bytes read from the start of each partition to recognise its file system.
SNIFF_SIZE = 4096
#: Limits on what a GPT header may ask us to read (the usual array is 128 * 128 bytes).
MAX_GPT_ENTRIES = 4096
MAX_GPT_ENTRY_SIZE = 4096
MAX_GPT_ARRAY_BYTES = 1024 * 1024
#: Logical partitions followed in an MBR extended partition before giving up.
MAX_LOGICAL_PARTITIONS = 128

ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_BOOT_GUID = "21686148-6449-6E6F-744E-656564454649"
MS_RESERVED_GUID = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
MS_BASIC_DATA_GUID = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
LINUX_FS_GUID = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
LINUX_LVM_GUID = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
LINUX_SWAP_GUID = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"

_WINDOWS, _LINUX = "windows", "linux"

# GPT type GUID -> (name, OS family the type implies or None).
_GPT_TYPES: dict[str, tuple[str, str | None]] = {
    ESP_GUID: ("EFI system partition", None),
    BIOS_BOOT_GUID: ("BIOS boot partition", _LINUX),  # only GRUB uses it
    MS_RESERVED_GUID: ("Microsoft reserved", _WINDOWS),
    MS_BASIC_DATA_GUID: ("Microsoft basic data", _WINDOWS),
    "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": ("Windows recovery environment", _WINDOWS),
    "5808C8AA-7E8F-42E0-85D2-E1E90434CFB3": ("Windows LDM metadata", _WINDOWS),
    "AF9B60A0-1431-4F62-BC68-3311714A69AD": ("Windows LDM data", _WINDOWS),
    "E75CAF8F-F680-4CEE-AFA3-B001E56EFC2D": ("Windows storage spaces", _WINDOWS),
    LINUX_FS_GUID: ("Linux filesystem", _LINUX),
    LINUX_LVM_GUID: ("Linux LVM", _LINUX),
    LINUX_SWAP_GUID: ("Linux swap", _LINUX),
    "A19D880F-05FC-4D3B-A006-743F0F84911E": ("Linux RAID", _LINUX),
    "CA7D7CCB-63ED-4C53-861C-1742536059CC": ("Linux LUKS", _LINUX),
    "8DA63339-0007-60C0-C436-083AC8230908": ("Linux reserved", _LINUX),
    "BC13C2FF-59E6-4262-A352-B275FD6F7172": ("Linux extended boot", _LINUX),
    "933AC7E1-2EB4-4F13-B844-0E14E2AEF915": ("Linux /home", _LINUX),
    "3B8F8425-20E0-4F3B-907F-1A25A76F98E8": ("Linux /srv", _LINUX),
    "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": ("Linux root (x86-64)", _LINUX),
    "44479540-F297-41B2-9AF7-D131D5F0458A": ("Linux root (x86)", _LINUX),
    "B921B045-1DF0-41C3-AF44-4C6F280D3FAE": ("Linux root (ARM64)", _LINUX),
    "69DAD710-2CE4-4E3C-B16C-21A1D49ABED3": ("Linux root (ARM)", _LINUX),
    "6523F8AE-3EB1-4E2A-A05A-18B695AE656F": ("Linux root (Alpha)", _LINUX),
    "993D8D3D-F80E-4225-855A-9DAF8ED7EA97": ("Linux root (IA-64)", _LINUX),
    "60D5A7FE-8E7D-435C-B714-3DD8162144E1": ("Linux root (RISC-V 64)", _LINUX),
    "516E7CB4-6ECF-11D6-8FF8-00022D09712B": ("FreeBSD data", None),
    "516E7CB5-6ECF-11D6-8FF8-00022D09712B": ("FreeBSD swap", None),
    "516E7CB6-6ECF-11D6-8FF8-00022D09712B": ("FreeBSD UFS", None),
    "516E7CBA-6ECF-11D6-8FF8-00022D09712B": ("FreeBSD ZFS", None),
    "83BD6B9D-7F41-11DC-BE0B-001560B84F0F": ("FreeBSD boot", None),
    "6A898CC3-1DD2-11B2-99A6-080020736631": ("ZFS", None),
    "48465300-0000-11AA-AA11-00306543ECAC": ("Apple HFS+", None),
}

# MBR partition type -> (name, OS family the type implies or None).
_MBR_TYPES: dict[int, tuple[str, str | None]] = {
    0x01: ("FAT12", None),
    0x04: ("FAT16 <32M", None),
    0x05: ("Extended", None),
    0x06: ("FAT16", None),
    0x07: ("HPFS/NTFS/exFAT", _WINDOWS),
    0x0B: ("W95 FAT32", None),
    0x0C: ("W95 FAT32 (LBA)", None),
    0x0E: ("W95 FAT16 (LBA)", None),
    0x0F: ("W95 extended (LBA)", None),
    0x11: ("Hidden FAT12", None),
    0x12: ("Compaq diagnostics", None),
    0x14: ("Hidden FAT16 <32M", None),
    0x16: ("Hidden FAT16", None),
    0x17: ("Hidden HPFS/NTFS", _WINDOWS),
    0x1B: ("Hidden W95 FAT32", None),
    0x1C: ("Hidden W95 FAT32 (LBA)", None),
    0x1E: ("Hidden W95 FAT16 (LBA)", None),
    0x27: ("Hidden NTFS WinRE", _WINDOWS),
    0x42: ("Windows dynamic disk (LDM)", _WINDOWS),
    0x82: ("Linux swap", _LINUX),
    0x83: ("Linux", _LINUX),
    0x85: ("Linux extended", None),  # a container: its logical partitions vote
    0x8E: ("Linux LVM", _LINUX),
    0xA5: ("FreeBSD", None),
    0xA6: ("OpenBSD", None),
    0xA9: ("NetBSD", None),
    0xEE: ("GPT protective", None),
    0xEF: ("EFI (FAT-12/16/32)", None),
    0xFD: ("Linux raid autodetect", _LINUX),
}
_MBR_TYPES_BY_TEXT = {f"0x{kind:02x}": value for kind, value in _MBR_TYPES.items()}
_MBR_EXTENDED = frozenset({0x05, 0x0F, 0x85})
_MBR_ESP = 0xEF
_MBR_PROTECTIVE = 0xEE

# File system -> OS family it implies (None: used by every OS, e.g. FAT on an ESP).
_FS_FAMILY: dict[str, str | None] = {
    "ntfs": _WINDOWS,
    "refs": _WINDOWS,
    "BitLocker": _WINDOWS,
    "exfat": None,
    "fat12": None,
    "fat16": None,
    "fat32": None,
    "ext2": _LINUX,
    "ext3": _LINUX,
    "ext4": _LINUX,
    "xfs": _LINUX,
    "btrfs": _LINUX,
    "LVM2_member": _LINUX,
    "swap": _LINUX,
    "crypto_LUKS": _LINUX,
    "squashfs": _LINUX,
}

# ext4-only feature bits (as libblkid tells ext4 from ext3/ext2).
_EXT4_INCOMPAT = 0x0040 | 0x0080 | 0x0100 | 0x0200 | 0x0400 | 0x1000 | 0x8000 | 0x10000
_EXT4_RO_COMPAT = 0x0008 | 0x0010 | 0x0020 | 0x0040 | 0x0400
_EXT3_HAS_JOURNAL = 0x0004


@dataclass(frozen=True)
class Partition:
    """One partition. ``start`` and ``size`` are in bytes; ``type`` is the GPT type GUID
    (upper case) or the MBR type as ``0x83``; ``name`` is the GPT label; ``bootable`` the
    MBR active flag or the GPT legacy-BIOS-bootable attribute."""

    number: int
    start: int
    size: int
    type: str
    type_name: str
    name: str = ""
    bootable: bool = False
    filesystem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "start": self.start,
            "size": self.size,
            "type": self.type,
            "type_name": self.type_name,
            "name": self.name,
            "bootable": self.bootable,
            "filesystem": self.filesystem,
        }


@dataclass(frozen=True)
class DiskLayout:
    """What a disk's partition table says (see the module docstring for the rules).

    ``filesystem`` is a file system found on the whole disk when it has no partition
    table; ``warnings`` lists anything odd (bad checksums, partitions past the end).
    """

    scheme: Scheme
    partitions: tuple[Partition, ...]
    firmware: Firmware
    os_family: OsFamily
    generation: Generation | None
    filesystem: str | None = None
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "partitions": [p.to_json() for p in self.partitions],
            "firmware": self.firmware,
            "os_family": self.os_family,
            "generation": self.generation,
            "filesystem": self.filesystem,
            "warnings": list(self.warnings),
        }


def _read(read: Reader, offset: int, length: int) -> bytes:
    """``read`` padded with zeros to ``length`` (the disk reads as zeros past its end)."""
    data = bytes(read(offset, length)) if length > 0 else b""
    return data.ljust(length, b"\x00")[:length]


def sniff_filesystem(head: bytes, *, btrfs_magic: bytes = b"") -> str | None:
    """Recognise a file system (or LVM/swap/LUKS signature) from the first bytes of a
    partition; ``btrfs_magic`` is the 8 bytes at 64 KiB + 64 where btrfs keeps its magic."""
    if head[3:11] == b"NTFS    ":
        return "ntfs"
    if head[3:11] == b"EXFAT   ":
        return "exfat"
    if head[3:11] == b"-FVE-FS-":
        return "BitLocker"
    if head[:8] == b"\x00\x00\x00ReFS\x00":
        return "refs"
    if head[82:90] == b"FAT32   ":
        return "fat32"
    if head[54:62] in (b"FAT12   ", b"FAT16   "):
        return head[54:59].decode().lower()
    if head[:4] == b"XFSB":
        return "xfs"
    if head[:6] == b"LUKS\xba\xbe":
        return "crypto_LUKS"
    if head[:4] in (b"hsqs", b"sqsh"):
        return "squashfs"
    for label in (0, 512):  # LVM2 writes its label in one of the first four sectors
        if head[label : label + 8] == b"LABELONE" and head[label + 24 : label + 32] == (
            b"LVM2 001"
        ):
            return "LVM2_member"
    if len(head) >= 1024 + 0x68 and head[1024 + 56 : 1024 + 58] == b"\x53\xef":
        compat, incompat, ro_compat = struct.unpack_from("<III", head, 1024 + 0x5C)
        if incompat & _EXT4_INCOMPAT or ro_compat & _EXT4_RO_COMPAT:
            return "ext4"
        return "ext3" if compat & _EXT3_HAS_JOURNAL else "ext2"
    if head[4086:4096] in (b"SWAPSPACE2", b"SWAP-SPACE"):
        return "swap"
    if btrfs_magic == b"_BHRfS_M":
        return "btrfs"
    return None


_BTRFS_MAGIC_OFFSET = 65536 + 64


def _sniff_at(read: Reader, start: int, length: int) -> str | None:
    """The file system of the ``length`` bytes at ``start`` (never reading past them)."""
    if length <= 0:
        return None
    head = _read(read, start, min(SNIFF_SIZE, length))
    found = sniff_filesystem(head)
    if found is None and length >= _BTRFS_MAGIC_OFFSET + 8:
        found = sniff_filesystem(head, btrfs_magic=_read(read, start + _BTRFS_MAGIC_OFFSET, 8))
    return found


def _guid(raw: bytes) -> str:
    return str(uuid.UUID(bytes_le=raw)).upper()


@dataclass(frozen=True)
class _GptHeader:
    entries_lba: int
    entry_count: int
    entry_size: int
    entries_crc: int


def _parse_gpt_header(sector: bytes) -> tuple[_GptHeader | None, str | None]:
    """The header, or None; and a complaint about it, or None."""
    if sector[:8] != b"EFI PART":
        return None, None
    (header_size,) = struct.unpack_from("<I", sector, 12)
    if not 92 <= header_size <= SECTOR:
        return None, f"GPT header size {header_size} is invalid"
    (stored_crc,) = struct.unpack_from("<I", sector, 16)
    body = sector[:16] + b"\x00\x00\x00\x00" + sector[20:header_size]
    entries_lba, count, size, entries_crc = struct.unpack_from("<QIII", sector, 72)
    header = _GptHeader(entries_lba, count, size, entries_crc)
    if zlib.crc32(body) != stored_crc:
        return header, "GPT header checksum does not match"
    return header, None


def _read_gpt(read: Reader, disk_size: int, warnings: list[str]) -> list[tuple[int, bytes]] | None:
    """``(number, entry bytes)`` of the used GPT entries, or None when there is no GPT
    header. Falls back to the backup header (last sector) when the primary is damaged."""
    primary, problem = _parse_gpt_header(_read(read, SECTOR, SECTOR))
    header = primary
    if problem is not None or primary is None:
        last = disk_size // SECTOR - 1
        backup, backup_problem = (
            _parse_gpt_header(_read(read, last * SECTOR, SECTOR)) if last > 1 else (None, None)
        )
        if backup is not None and backup_problem is None:
            reason = "no primary GPT header" if primary is None else f"primary {problem}"
            warnings.append(f"{reason}; using the backup GPT header")
            header = backup
        elif primary is not None:
            warnings.append(str(problem))
    if header is None:
        return None
    size = header.entry_size
    if size < 128 or size % 8 or size > MAX_GPT_ENTRY_SIZE:
        warnings.append(f"GPT entry size {size} is invalid; partitions not read")
        return []
    count = header.entry_count
    if count > MAX_GPT_ENTRIES or count * size > MAX_GPT_ARRAY_BYTES:
        warnings.append(f"GPT claims {count} entries; reading only the first")
        count = min(MAX_GPT_ENTRIES, MAX_GPT_ARRAY_BYTES // size)
    array_offset = header.entries_lba * SECTOR
    if array_offset >= disk_size:
        warnings.append("GPT partition entries lie past the end of the disk")
        return []
    array = _read(read, array_offset, count * size)
    if count == header.entry_count and zlib.crc32(array) != header.entries_crc:
        warnings.append("GPT partition entries checksum does not match")
    entries = []
    for index in range(count):
        entry = array[index * size : index * size + 128]
        if any(entry[:16]):
            entries.append((index + 1, entry))
    return entries


def _gpt_partitions(
    read: Reader, entries: Iterable[tuple[int, bytes]], disk_size: int, warnings: list[str]
) -> list[Partition]:
    partitions = []
    for number, entry in entries:
        type_guid = _guid(entry[:16])
        first, last, attributes = struct.unpack_from("<QQQ", entry, 32)
        name = entry[56:128].decode("utf-16-le", errors="replace").split("\x00", 1)[0]
        start = first * SECTOR
        size = (last - first + 1) * SECTOR if last >= first else 0
        if size == 0:
            warnings.append(f"partition {number} ends before it starts")
        partitions.append(
            Partition(
                number=number,
                start=start,
                size=size,
                type=type_guid,
                type_name=_GPT_TYPES.get(type_guid, ("unknown", None))[0],
                name=name,
                bootable=bool(attributes & 0x4),  # legacy BIOS bootable
                filesystem=_sniff_partition(read, start, size, disk_size, number, warnings),
            )
        )
    return partitions


def _sniff_partition(
    read: Reader, start: int, size: int, disk_size: int, number: int, warnings: list[str]
) -> str | None:
    if start + size > disk_size:
        warnings.append(f"partition {number} extends past the end of the disk")
    return _sniff_at(read, start, min(size, disk_size - start))


@dataclass(frozen=True)
class _MbrEntry:
    active: bool
    type: int
    start_lba: int
    sectors: int


def _mbr_entries(sector: bytes) -> list[_MbrEntry] | None:
    """The four primary entries, or None when ``sector`` is not an MBR (no 0x55AA, or a
    status byte other than 0x00/0x80)."""
    if sector[510:512] != b"\x55\xaa":
        return None
    entries = []
    for index in range(4):
        status, kind, start, count = struct.unpack_from("<B3xB3xII", sector, 446 + 16 * index)
        if status not in (0x00, 0x80):
            return None
        entries.append(_MbrEntry(status == 0x80, kind, start, count))
    return entries


def _mbr_partition(
    read: Reader,
    number: int,
    entry: _MbrEntry,
    start_lba: int,
    disk_size: int,
    warnings: list[str],
) -> Partition:
    start, size = start_lba * SECTOR, entry.sectors * SECTOR
    extended = entry.type in _MBR_EXTENDED
    return Partition(
        number=number,
        start=start,
        size=size,
        type=f"0x{entry.type:02x}",
        type_name=_MBR_TYPES.get(entry.type, ("unknown", None))[0],
        bootable=entry.active,
        filesystem=None
        if extended
        else _sniff_partition(read, start, size, disk_size, number, warnings),
    )


def _mbr_partitions(
    read: Reader, entries: list[_MbrEntry], disk_size: int, warnings: list[str]
) -> list[Partition]:
    partitions = []
    for index, entry in enumerate(entries):
        if entry.type == 0 or entry.sectors == 0:
            continue
        partitions.append(
            _mbr_partition(read, index + 1, entry, entry.start_lba, disk_size, warnings)
        )
        if entry.type in _MBR_EXTENDED:
            partitions.extend(_logical_partitions(read, entry.start_lba, disk_size, warnings))
    return partitions


def _logical_partitions(
    read: Reader, extended_lba: int, disk_size: int, warnings: list[str]
) -> list[Partition]:
    """Follow the chain of extended boot records; logical partitions are numbered from 5."""
    partitions: list[Partition] = []
    ebr_lba = extended_lba
    seen: set[int] = set()
    while len(partitions) < MAX_LOGICAL_PARTITIONS:
        if ebr_lba in seen or ebr_lba * SECTOR >= disk_size:
            warnings.append("the chain of logical partitions is broken")
            break
        seen.add(ebr_lba)
        entries = _mbr_entries(_read(read, ebr_lba * SECTOR, SECTOR))
        if entries is None:
            warnings.append(f"no extended boot record at sector {ebr_lba}")
            break
        logical, following = entries[0], entries[1]
        if logical.type != 0 and logical.sectors:
            partitions.append(
                _mbr_partition(
                    read,
                    5 + len(partitions),
                    logical,
                    ebr_lba + logical.start_lba,
                    disk_size,
                    warnings,
                )
            )
        if following.type not in _MBR_EXTENDED or following.start_lba == 0:
            break
        ebr_lba = extended_lba + following.start_lba
    return partitions


def _family_of(partition: Partition, types: dict[str, tuple[str, str | None]]) -> str | None:
    if partition.filesystem is not None:
        return _FS_FAMILY.get(partition.filesystem)
    return types.get(partition.type, ("", None))[1]


def _os_family(partitions: Iterable[Partition], scheme: Scheme, warnings: list[str]) -> OsFamily:
    votes = {_WINDOWS: 0, _LINUX: 0}
    for partition in partitions:
        family = _family_of(partition, _GPT_TYPES if scheme == "gpt" else _MBR_TYPES_BY_TEXT)
        if family is not None:
            # Count at least one byte, so that an empty partition still votes.
            votes[family] += max(partition.size, 1)
    if votes[_WINDOWS] and votes[_LINUX]:
        warnings.append("the disk holds both Windows and Linux partitions")
    if votes[_WINDOWS] > votes[_LINUX]:
        return "windows"
    if votes[_LINUX] > votes[_WINDOWS]:
        return "linux"
    return "unknown"


def _generation(firmware: Firmware) -> Generation | None:
    if firmware == "uefi":
        return "V2"
    if firmware == "bios":
        return "V1"
    return None


def analyze_disk(read: Reader, size: int) -> DiskLayout:
    """Read a disk's partition table and sniff its partitions' file systems.

    ``read(offset, length)`` returns the disk's bytes there (short at the end); ``size``
    is the disk's size in bytes.
    """
    warnings: list[str] = []
    lba0 = _read(read, 0, min(SECTOR, size))
    lba0 = lba0.ljust(SECTOR, b"\x00")

    # A file system on the whole disk: its boot sector can carry 0x55AA like an MBR.
    whole_disk_fs = sniff_filesystem(lba0)
    if whole_disk_fs in ("ntfs", "exfat", "fat12", "fat16", "fat32", "BitLocker"):
        return _no_table(read, size, warnings)

    mbr = _mbr_entries(lba0)
    protective = mbr is not None and any(e.type == _MBR_PROTECTIVE for e in mbr)
    gpt_entries = _read_gpt(read, size, warnings) if size >= 2 * SECTOR else None

    if gpt_entries is not None and (mbr is None or protective):
        if mbr is None:
            warnings.append("GPT without a protective MBR")
        partitions = _gpt_partitions(read, gpt_entries, size, warnings)
        firmware: Firmware = "unknown"
        if any(p.type == ESP_GUID for p in partitions):
            firmware = "uefi"
        elif any(p.type == BIOS_BOOT_GUID or p.bootable for p in partitions):
            firmware = "bios"
        return _layout("gpt", partitions, firmware, warnings)

    if mbr is not None:
        if protective:
            warnings.append("protective MBR (0xEE) but no valid GPT header")
            mbr = [e for e in mbr if e.type != _MBR_PROTECTIVE]
        elif gpt_entries is not None:
            warnings.append("ignored a GPT header: the MBR has no protective (0xEE) entry")
        partitions = _mbr_partitions(read, mbr, size, warnings)
        if any(e.active for e in mbr) or any(lba0[:440]):
            firmware = "bios"
        elif any(e.type == _MBR_ESP for e in mbr):
            firmware = "uefi"
        else:
            firmware = "unknown"
        return _layout("mbr", partitions, firmware, warnings)

    return _no_table(read, size, warnings)


def _no_table(read: Reader, size: int, warnings: list[str]) -> DiskLayout:
    filesystem = _sniff_at(read, 0, size)
    family = _FS_FAMILY.get(filesystem) if filesystem else None
    return DiskLayout(
        scheme="none",
        partitions=(),
        firmware="unknown",
        os_family="windows" if family == _WINDOWS else "linux" if family == _LINUX else "unknown",
        generation=None,
        filesystem=filesystem,
        warnings=tuple(warnings),
    )


def _layout(
    scheme: Scheme, partitions: list[Partition], firmware: Firmware, warnings: list[str]
) -> DiskLayout:
    os_family = _os_family(partitions, scheme, warnings)
    return DiskLayout(
        scheme=scheme,
        partitions=tuple(partitions),
        firmware=firmware,
        os_family=os_family,
        generation=_generation(firmware),
        warnings=tuple(warnings),
    )
