"""Partition analysis: a disk's partition table (GPT, or MBR with logical partitions),
its partitions' file systems, and what they say about it as an OS disk.

Pure: the caller passes ``read(offset, length) -> bytes`` (short at the end of the disk)
and the disk's size. From the layout we guess what Azure needs to know about an OS disk:
the firmware it boots with (hence the VM generation) and the OS family. The tables are
read by :mod:`~azrestore.formats.gpt` and :mod:`~azrestore.formats.mbr`, file systems
recognised by :mod:`~azrestore.formats.filesystems`, and the firmware, generation and
family decided by :mod:`~azrestore.formats.os_disk`.

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

from .filesystems import sniff_at, sniff_filesystem
from .gpt import gpt_partitions, read_gpt_entries
from .layout import DiskLayout, Firmware, Partition, Reader, Scheme, read_padded
from .mbr import mbr_entries, mbr_partitions
from .os_disk import generation_of, gpt_firmware, mbr_firmware, vote_os_family, whole_disk_family
from .partition_types import MBR_PROTECTIVE
from .sizes import SECTOR

#: File systems whose boot sector ends in 0x55AA like an MBR.
_BOOT_SECTOR_FILESYSTEMS = frozenset({"ntfs", "exfat", "fat12", "fat16", "fat32", "BitLocker"})


def analyze_disk(read: Reader, size: int) -> DiskLayout:
    """Read a disk's partition table and sniff its partitions' file systems.

    ``read(offset, length)`` returns the disk's bytes there (short at the end); ``size``
    is the disk's size in bytes.
    """
    warnings: list[str] = []
    lba0 = read_padded(read, 0, min(SECTOR, size))
    lba0 = lba0.ljust(SECTOR, b"\x00")

    # A file system on the whole disk: its boot sector can carry 0x55AA like an MBR.
    if sniff_filesystem(lba0) in _BOOT_SECTOR_FILESYSTEMS:
        return _no_table(read, size, warnings)

    mbr = mbr_entries(lba0)
    protective = mbr is not None and any(e.type == MBR_PROTECTIVE for e in mbr)
    gpt_entries = read_gpt_entries(read, size, warnings) if size >= 2 * SECTOR else None

    if gpt_entries is not None and (mbr is None or protective):
        if mbr is None:
            warnings.append("GPT without a protective MBR")
        partitions = gpt_partitions(read, gpt_entries, size, warnings)
        return _layout("gpt", partitions, gpt_firmware(partitions), warnings)

    if mbr is not None:
        if protective:
            warnings.append("protective MBR (0xEE) but no valid GPT header")
            mbr = [e for e in mbr if e.type != MBR_PROTECTIVE]
        elif gpt_entries is not None:
            warnings.append("ignored a GPT header: the MBR has no protective (0xEE) entry")
        partitions = mbr_partitions(read, mbr, size, warnings)
        return _layout("mbr", partitions, mbr_firmware(mbr, lba0), warnings)

    return _no_table(read, size, warnings)


def _no_table(read: Reader, size: int, warnings: list[str]) -> DiskLayout:
    filesystem = sniff_at(read, 0, size)
    return DiskLayout(
        scheme="none",
        partitions=(),
        firmware="unknown",
        os_family=whole_disk_family(filesystem),
        generation=None,
        filesystem=filesystem,
        warnings=tuple(warnings),
    )


def _layout(
    scheme: Scheme, partitions: list[Partition], firmware: Firmware, warnings: list[str]
) -> DiskLayout:
    os_family = vote_os_family(partitions, scheme, warnings)
    return DiskLayout(
        scheme=scheme,
        partitions=tuple(partitions),
        firmware=firmware,
        os_family=os_family,
        generation=generation_of(firmware),
        warnings=tuple(warnings),
    )
