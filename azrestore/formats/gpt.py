"""GPT: the header at LBA 1 (or its backup in the last sector) and the partition entries.

Limits keep a damaged or hostile header from making us read much: at most
``MAX_GPT_ENTRIES`` entries of at most ``MAX_GPT_ENTRY_SIZE`` bytes, in an array of at
most ``MAX_GPT_ARRAY_BYTES``.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from .filesystems import sniff_partition
from .layout import Partition, Reader, read_padded
from .partition_types import GPT_TYPES
from .sizes import SECTOR

#: Limits on what a GPT header may ask us to read (the usual array is 128 * 128 bytes).
MAX_GPT_ENTRIES = 4096
MAX_GPT_ENTRY_SIZE = 4096
MAX_GPT_ARRAY_BYTES = 1024 * 1024


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


def read_gpt_entries(
    read: Reader, disk_size: int, warnings: list[str]
) -> list[tuple[int, bytes]] | None:
    """``(number, entry bytes)`` of the used GPT entries, or None when there is no GPT
    header. Falls back to the backup header (last sector) when the primary is damaged."""
    primary, problem = _parse_gpt_header(read_padded(read, SECTOR, SECTOR))
    header = primary
    if problem is not None or primary is None:
        last = disk_size // SECTOR - 1
        backup, backup_problem = (
            _parse_gpt_header(read_padded(read, last * SECTOR, SECTOR))
            if last > 1
            else (None, None)
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
    array = read_padded(read, array_offset, count * size)
    if count == header.entry_count and zlib.crc32(array) != header.entries_crc:
        warnings.append("GPT partition entries checksum does not match")
    entries = []
    for index in range(count):
        entry = array[index * size : index * size + 128]
        if any(entry[:16]):
            entries.append((index + 1, entry))
    return entries


def gpt_partitions(
    read: Reader, entries: Iterable[tuple[int, bytes]], disk_size: int, warnings: list[str]
) -> list[Partition]:
    """The partitions of the used entries, with their file systems sniffed."""
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
                type_name=GPT_TYPES.get(type_guid, ("unknown", None))[0],
                name=name,
                bootable=bool(attributes & 0x4),  # legacy BIOS bootable
                filesystem=sniff_partition(read, start, size, disk_size, number, warnings),
            )
        )
    return partitions
