"""The dynamic disk header of a dynamic or differencing VHD (Microsoft's Virtual Hard Disk
Image Format Specification): its block table (BAT), the per-block sector bitmaps, and a
differencing disk's parent link (the parent's Unique Id and its locators).

Pure: every function takes the bytes of one structure and raises :class:`VhdDynamicError`
for what is malformed; offsets it returns are checked against nothing but the structure
(the caller checks them against the file).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER_SIZE = 1024
COOKIE = b"cxsparse"
UNUSED = 0xFFFF_FFFF
#: Locator platform codes: a Windows path relative to the child, and an absolute one
#: (both UTF-16LE); Wi2r/Wi2k are their deprecated single-byte forms.
W2RU = b"W2ru"
W2KU = b"W2ku"
WI2R = b"Wi2r"
WI2K = b"Wi2k"
#: Longest locator path read (bytes): Windows' extended paths stop at 32767 characters.
MAX_LOCATOR = 65536
#: Largest block size taken (the specification's default is 2 MiB).
MAX_BLOCK = 256 << 20

# cookie, data offset, table offset, header version, max table entries, block size,
# checksum, parent unique id, parent time stamp, reserved, parent unicode name (512),
# 8 locator entries (24 bytes each), 256 reserved.
_HEADER = struct.Struct(">8sQQIII I16sI4x512s192s256x")
_LOCATOR = struct.Struct(">4sIIIQ")
_CHECKSUM_OFFSET = 36
assert _HEADER.size == HEADER_SIZE


class VhdDynamicError(ValueError):
    """A dynamic disk header, BAT or locator that is malformed."""


@dataclass(frozen=True, slots=True)
class Locator:
    """Where one parent locator's path is in the file: its platform code, offset, length."""

    code: bytes
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class DynamicHeader:
    """What a dynamic disk header says: the BAT, the block size, and the parent link."""

    table_offset: int
    max_table_entries: int
    block_size: int
    parent_unique_id: bytes
    parent_name: str
    locators: tuple[Locator, ...]

    @property
    def bitmap_size(self) -> int:
        """Bytes of the sector bitmap before each block's data (whole sectors)."""
        return bitmap_size(self.block_size)


def bitmap_size(block_size: int) -> int:
    """Bytes of a block's sector bitmap: one bit per 512-byte sector, whole sectors."""
    return max(512, -(-(block_size // 512 // 8) // 512) * 512)


def header_checksum(data: bytes) -> int:
    """One's complement of the header's byte sum, its checksum field read as 0."""
    total = sum(data) - sum(data[_CHECKSUM_OFFSET : _CHECKSUM_OFFSET + 4])
    return ~total & 0xFFFF_FFFF


def parse_header(data: bytes, *, virtual_size: int) -> DynamicHeader:
    """The dynamic disk header (its 1024 bytes) of a disk of ``virtual_size`` bytes."""
    if len(data) != HEADER_SIZE:
        raise VhdDynamicError(f"a dynamic disk header of {len(data)} bytes")
    (
        cookie,
        _data_offset,
        table_offset,
        version,
        entries,
        block_size,
        checksum,
        parent_id,
        _parent_time,
        parent_name,
        locators,
    ) = _HEADER.unpack(data)
    if cookie != COOKIE:
        raise VhdDynamicError("no dynamic disk header (cookie cxsparse)")
    if checksum != header_checksum(data):
        raise VhdDynamicError("the dynamic disk header's checksum does not match")
    if version != 0x00010000:
        raise VhdDynamicError(f"dynamic disk header version 0x{version:08x}")
    if block_size < 512 * 8 or block_size > MAX_BLOCK or block_size & (block_size - 1):
        raise VhdDynamicError(f"block size {block_size}")
    if entries < -(-virtual_size // block_size) or entries > (1 << 31) // 4:
        raise VhdDynamicError(f"a BAT of {entries} entries for {virtual_size} bytes")
    found = []
    for index in range(8):
        code, _space, length, _reserved, offset = _LOCATOR.unpack_from(locators, 24 * index)
        if code == bytes(4) or length == 0:
            continue
        if length > MAX_LOCATOR:
            raise VhdDynamicError(f"a parent locator of {length} bytes")
        found.append(Locator(code, offset, length))
    name = parent_name.decode("utf-16-be", errors="replace").split("\x00", 1)[0]
    return DynamicHeader(table_offset, entries, block_size, parent_id, name, tuple(found))


def parse_bat(data: bytes, entries: int) -> tuple[int, ...]:
    """The BAT's entries: each block's sector offset in the file, or :data:`UNUSED`."""
    if len(data) < 4 * entries:
        raise VhdDynamicError(f"a BAT of {len(data)} bytes for {entries} entries")
    return struct.unpack_from(f">{entries}I", data)


def locator_path(locator: Locator, data: bytes) -> str | None:
    """The path a locator holds (its ``data``), or None for a platform not read here."""
    if locator.code in (W2RU, W2KU):
        text = data.decode("utf-16-le", errors="replace")
    elif locator.code in (WI2R, WI2K):
        text = data.decode("latin-1")
    else:
        return None
    text = text.split("\x00", 1)[0]
    return text or None


def sector_runs(bitmap: bytes, sectors: int, *, msb_first: bool = True) -> list[tuple[int, int]]:
    """``(first sector, count)`` of the runs of set bits among a bitmap's first
    ``sectors`` bits: VHD numbers a byte's bits from its most significant one, VHDX from
    its least."""
    if len(bitmap) * 8 < sectors:
        raise VhdDynamicError(f"a sector bitmap of {len(bitmap)} bytes for {sectors} sectors")
    whole = bitmap[: -(-sectors // 8)]
    if not any(whole):
        return []
    if whole.count(0xFF) == len(whole):
        return [(0, sectors)]
    value = int.from_bytes(whole, "big" if msb_first else "little")
    bits = f"{value:0{len(whole) * 8}b}"
    order = bits[:sectors] if msb_first else bits[::-1][:sectors]
    runs: list[tuple[int, int]] = []
    position = order.find("1")
    while position >= 0:
        end = order.find("0", position)
        if end < 0:
            end = sectors
        runs.append((position, end - position))
        position = order.find("1", end)
    return runs
