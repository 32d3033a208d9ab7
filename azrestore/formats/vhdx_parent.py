"""A differencing VHDX (MS-VHDX): its current header (DataWriteGuid, the parent's link to
it; LogGuid), its parent locator (parent_linkage and the paths), and its BAT read with
the sector bitmap entries and PAYLOAD_BLOCK_PARTIALLY_PRESENT blocks.

Pure: every function takes the bytes of one structure and raises
:class:`~azrestore.formats.vhdx.VhdxError` for what is malformed.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from .vhdx import BLOCK_FULLY_PRESENT, BLOCK_PARTIALLY_PRESENT, Parameters, VhdxError

#: Where the two headers are, and each one's size.
HEADER_OFFSETS = (64 * 1024, 128 * 1024)
HEADER_SIZE = 4096
PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
VHDX_LOCATOR_TYPE = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")
#: A sector bitmap block is 1 MiB; its BAT entry's state when it is in the file.
BITMAP_BLOCK = 1 << 20
SB_BLOCK_PRESENT = 6
#: Payload states whose data comes from the parent (not present; undefined, which may
#: read as anything: the parent's data is what the disk held before), and those that
#: read as zeros (zero, unmapped, and unmapped as spec 0.95 numbered it).
FROM_PARENT = frozenset({0, 1})
ZERO = frozenset({2, 3, 5})
_MAX_KEYS = 256
#: The header section fills the file's first 1 MiB: no block lies there.
_FIRST_BLOCK = 1 << 20

_CRC_TABLE: list[int] = []
for _byte in range(256):
    _value = _byte
    for _ in range(8):
        _value = (_value >> 1) ^ 0x82F63B78 if _value & 1 else _value >> 1
    _CRC_TABLE.append(_value)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of VHDX headers and region tables."""
    crc = 0xFFFF_FFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class Header:
    """The current VHDX header's fields that matter here."""

    sequence: int
    data_write_guid: uuid.UUID
    log_guid: uuid.UUID
    log_length: int
    log_offset: int


def _header(data: bytes) -> Header | None:
    if len(data) < HEADER_SIZE or data[:4] != b"head":
        return None
    (checksum,) = struct.unpack_from("<I", data, 4)
    if checksum != crc32c(data[:4] + bytes(4) + data[8:HEADER_SIZE]):
        return None
    sequence, _file_write, data_write, log, _version, _log_version, length, offset = (
        struct.unpack_from("<Q16s16s16sHHIQ", data, 8)
    )
    return Header(sequence, uuid.UUID(bytes_le=data_write), uuid.UUID(bytes_le=log), length, offset)


def current_header(first: bytes, second: bytes) -> Header:
    """Of the two headers (4 KiB each), the valid one with the higher sequence number."""
    found = [header for header in (_header(first), _header(second)) if header is not None]
    if not found:
        raise VhdxError("no valid header (signature and CRC-32C)")
    return max(found, key=lambda header: header.sequence)


def log_has_entries(log: bytes, log_guid: uuid.UUID) -> bool:
    """Whether the log region holds an entry written under ``log_guid`` (one that may
    need replaying); a zero LogGuid means an empty log."""
    if log_guid.int == 0:
        return False
    want = log_guid.bytes_le
    for offset in range(0, len(log) - 47, 4096):
        if log[offset : offset + 4] == b"loge" and log[offset + 32 : offset + 48] == want:
            return True
    return False


@dataclass(frozen=True, slots=True)
class ParentLocator:
    """The parent's identity links (DataWriteGuids it may have) and the paths naming it."""

    linkages: tuple[uuid.UUID, ...]
    paths: dict[str, str]


def parse_parent_locator(item: bytes) -> ParentLocator:
    """The parent locator metadata item: a VHDX locator's keys and values (UTF-16LE)."""
    if len(item) < 20:
        raise VhdxError("a parent locator shorter than its header")
    locator_type = uuid.UUID(bytes_le=item[:16])
    if locator_type != VHDX_LOCATOR_TYPE:
        raise VhdxError(f"a parent locator of type {locator_type} (not a VHDX parent)")
    (count,) = struct.unpack_from("<H", item, 18)
    if count > _MAX_KEYS or 20 + 12 * count > len(item):
        raise VhdxError(f"a parent locator of {count} entries")
    entries: dict[str, str] = {}
    for index in range(count):
        key_at, value_at, key_length, value_length = struct.unpack_from(
            "<IIHH", item, 20 + 12 * index
        )
        if key_at + key_length > len(item) or value_at + value_length > len(item):
            raise VhdxError("a parent locator entry outside its item")
        key = item[key_at : key_at + key_length].decode("utf-16-le", errors="replace")
        value = item[value_at : value_at + value_length].decode("utf-16-le", errors="replace")
        entries[key] = value
    linkages = []
    for key in ("parent_linkage", "parent_linkage2"):
        if key in entries:
            try:
                linkages.append(uuid.UUID(entries[key].strip()))
            except ValueError:
                raise VhdxError(f"a parent locator's {key} {entries[key]!r}") from None
    if not linkages:
        raise VhdxError("a parent locator without parent_linkage")
    paths = {
        key: entries[key]
        for key in ("relative_path", "volume_path", "absolute_win32_path")
        if entries.get(key)
    }
    if not paths:
        raise VhdxError("a parent locator without a path")
    return ParentLocator(tuple(linkages), paths)


@dataclass(frozen=True, slots=True)
class Block:
    """A payload block a differencing VHDX says something about: its index, its state,
    and where its data lies in the file (0 for a block with none)."""

    index: int
    state: int
    offset: int


def differencing_blocks(bat: bytes, parameters: Parameters) -> tuple[list[Block], dict[int, int]]:
    """The payload blocks that do not come whole from the parent (data, partial, zero),
    and the file offset of each chunk's sector bitmap block, by chunk."""
    if not parameters.has_parent:
        raise VhdxError("not a differencing VHDX")
    entries = parameters.bat_entries
    if len(bat) < 8 * entries:
        raise VhdxError(f"BAT of {len(bat)} bytes for {entries} entries")
    values = struct.unpack_from(f"<{entries}Q", bat)
    ratio = parameters.chunk_ratio
    bitmaps: dict[int, int] = {}
    for chunk in range(entries // (ratio + 1)):
        value = values[chunk * (ratio + 1) + ratio]
        state = value & 7
        if state == SB_BLOCK_PRESENT:
            bitmaps[chunk] = (value >> 20) << 20
            if bitmaps[chunk] < _FIRST_BLOCK:
                raise VhdxError(f"sector bitmap block {chunk} at file offset {bitmaps[chunk]}")
        elif state != 0:
            raise VhdxError(f"sector bitmap block {chunk} in state {state}")
    blocks: list[Block] = []
    for index in range(parameters.payload_blocks):
        value = values[index + index // ratio]
        state = value & 7
        if state in FROM_PARENT:
            continue
        offset = (value >> 20) << 20
        if state in ZERO:
            blocks.append(Block(index, state, 0))
            continue
        if state not in (BLOCK_FULLY_PRESENT, BLOCK_PARTIALLY_PRESENT):
            raise VhdxError(f"payload block {index} in state {state}")
        if offset < _FIRST_BLOCK:  # blocks lie after the header section
            raise VhdxError(f"payload block {index} present at file offset {offset}")
        if state == BLOCK_PARTIALLY_PRESENT and index // ratio not in bitmaps:
            raise VhdxError(f"payload block {index} partially present without a sector bitmap")
        blocks.append(Block(index, state, offset))
    return blocks, bitmaps


def bitmap_slice(index: int, parameters: Parameters) -> tuple[int, int]:
    """Where block ``index``'s bits are in its chunk's sector bitmap block: ``(byte
    offset, sectors)``; bit ``i`` (least significant first) is the block's sector ``i``."""
    sector = parameters.logical_sector_size
    per_block = parameters.block_size // sector
    start = index * parameters.block_size
    length = min(parameters.block_size, parameters.virtual_size - start)
    return (index % parameters.chunk_ratio) * per_block // 8, length // sector
