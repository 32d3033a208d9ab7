"""File-system sniffing: what a partition (or a whole disk) holds, from its first bytes,
as libblkid names it, and the OS family each file system implies."""

from __future__ import annotations

import struct

from .layout import KnownFamily, Reader, read_padded

#: Bytes read from the start of each partition to recognise its file system.
SNIFF_SIZE = 4096

# File system -> OS family it implies (None: used by every OS, e.g. FAT on an ESP).
FS_FAMILY: dict[str, KnownFamily | None] = {
    "ntfs": "windows",
    "refs": "windows",
    "BitLocker": "windows",
    "exfat": None,
    "fat12": None,
    "fat16": None,
    "fat32": None,
    "ext2": "linux",
    "ext3": "linux",
    "ext4": "linux",
    "xfs": "linux",
    "btrfs": "linux",
    "LVM2_member": "linux",
    "swap": "linux",
    "crypto_LUKS": "linux",
    "squashfs": "linux",
}

# ext4-only feature bits (as libblkid tells ext4 from ext3/ext2).
_EXT4_INCOMPAT = 0x0040 | 0x0080 | 0x0100 | 0x0200 | 0x0400 | 0x1000 | 0x8000 | 0x10000
_EXT4_RO_COMPAT = 0x0008 | 0x0010 | 0x0020 | 0x0040 | 0x0400
_EXT3_HAS_JOURNAL = 0x0004


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


def sniff_at(read: Reader, start: int, length: int) -> str | None:
    """The file system of the ``length`` bytes at ``start`` (never reading past them)."""
    if length <= 0:
        return None
    head = read_padded(read, start, min(SNIFF_SIZE, length))
    found = sniff_filesystem(head)
    if found is None and length >= _BTRFS_MAGIC_OFFSET + 8:
        found = sniff_filesystem(
            head, btrfs_magic=read_padded(read, start + _BTRFS_MAGIC_OFFSET, 8)
        )
    return found


def sniff_partition(
    read: Reader, start: int, size: int, disk_size: int, number: int, warnings: list[str]
) -> str | None:
    """The file system of partition ``number``, read only where it lies on the disk (one
    that extends past the end is warned of)."""
    if start + size > disk_size:
        warnings.append(f"partition {number} extends past the end of the disk")
    return sniff_at(read, start, min(size, disk_size - start))
