"""MBR: the four primary entries in the first sector, and the logical partitions in the
chain of extended boot records behind an extended partition (numbered from 5)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .filesystems import sniff_partition
from .layout import Partition, Reader, read_padded
from .partition_types import MBR_EXTENDED, MBR_TYPES
from .sizes import SECTOR

#: Logical partitions followed in an MBR extended partition before giving up.
MAX_LOGICAL_PARTITIONS = 128


@dataclass(frozen=True)
class MbrEntry:
    """One of the four 16-byte entries of an MBR (or of an extended boot record)."""

    active: bool
    type: int
    start_lba: int
    sectors: int


def mbr_entries(sector: bytes) -> list[MbrEntry] | None:
    """The four primary entries, or None when ``sector`` is not an MBR (no 0x55AA, or a
    status byte other than 0x00/0x80)."""
    if sector[510:512] != b"\x55\xaa":
        return None
    entries = []
    for index in range(4):
        status, kind, start, count = struct.unpack_from("<B3xB3xII", sector, 446 + 16 * index)
        if status not in (0x00, 0x80):
            return None
        entries.append(MbrEntry(status == 0x80, kind, start, count))
    return entries


def _mbr_partition(
    read: Reader,
    number: int,
    entry: MbrEntry,
    start_lba: int,
    disk_size: int,
    warnings: list[str],
) -> Partition:
    start, size = start_lba * SECTOR, entry.sectors * SECTOR
    extended = entry.type in MBR_EXTENDED
    return Partition(
        number=number,
        start=start,
        size=size,
        type=f"0x{entry.type:02x}",
        type_name=MBR_TYPES.get(entry.type, ("unknown", None))[0],
        bootable=entry.active,
        filesystem=None
        if extended
        else sniff_partition(read, start, size, disk_size, number, warnings),
    )


def mbr_partitions(
    read: Reader, entries: list[MbrEntry], disk_size: int, warnings: list[str]
) -> list[Partition]:
    """The primary partitions, each extended one followed by its logical partitions."""
    partitions = []
    for index, entry in enumerate(entries):
        if entry.type == 0 or entry.sectors == 0:
            continue
        partitions.append(
            _mbr_partition(read, index + 1, entry, entry.start_lba, disk_size, warnings)
        )
        if entry.type in MBR_EXTENDED:
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
        entries = mbr_entries(read_padded(read, ebr_lba * SECTOR, SECTOR))
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
        if following.type not in MBR_EXTENDED or following.start_lba == 0:
            break
        ebr_lba = extended_lba + following.start_lba
    return partitions
