"""The allocation map of a VHDX file (MS-VHDX): its region table, the metadata items that
size its blocks, and its block allocation table (BAT), giving the virtual disk's extents
that hold data. qemu's vhdx driver reports no block status, so without this a dynamic
VHDX would be read whole.

Pure: every function takes the bytes of one structure and raises :class:`VhdxError` for
what is malformed. Checksums are qemu's to check (it opens the image as well).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

#: Where the first region table is, and how much to read for it.
REGION_TABLE_OFFSET = 192 * 1024
REGION_TABLE_SIZE = 64 * 1024
_MAX_REGIONS = 2047
_MAX_METADATA = 2047

BAT_GUID = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
METADATA_GUID = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
LOGICAL_SECTOR_SIZE = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")

#: Payload block states (the low 3 bits of a BAT entry).
BLOCK_FULLY_PRESENT = 6
BLOCK_PARTIALLY_PRESENT = 7
#: Not present, undefined, zero, unmapped (and unmapped as spec 0.95 numbered it): qemu
#: reads these as zeros.
_NO_DATA = {0, 1, 2, 3, 5}


class VhdxError(ValueError):
    """A VHDX structure that is malformed."""


@dataclass(frozen=True, slots=True)
class Region:
    offset: int
    length: int


def parse_region_table(data: bytes) -> dict[uuid.UUID, Region]:
    """The regions of a region table (its first 64 KiB), by GUID."""
    if len(data) < 16 or data[:4] != b"regi":
        raise VhdxError("no region table signature")
    (count,) = struct.unpack_from("<I", data, 8)
    if count > _MAX_REGIONS or 16 + 32 * count > len(data):
        raise VhdxError(f"region table of {count} entries")
    regions = {}
    for index in range(count):
        base = 16 + 32 * index
        guid = uuid.UUID(bytes_le=data[base : base + 16])
        offset, length = struct.unpack_from("<QI", data, base + 16)
        if offset % (1 << 20) or length % (1 << 20) or length == 0:
            raise VhdxError("region not aligned to 1 MiB")
        regions[guid] = Region(offset, length)
    for needed in (BAT_GUID, METADATA_GUID):
        if needed not in regions:
            raise VhdxError("region table without BAT or metadata region")
    return regions


@dataclass(frozen=True, slots=True)
class Parameters:
    """What sizes the BAT: block size, logical sector size, virtual size, a parent."""

    block_size: int
    logical_sector_size: int
    virtual_size: int
    has_parent: bool

    @property
    def chunk_ratio(self) -> int:
        """Payload blocks per sector bitmap block (which the BAT interleaves)."""
        return (1 << 23) * self.logical_sector_size // self.block_size

    @property
    def payload_blocks(self) -> int:
        return -(-self.virtual_size // self.block_size)

    @property
    def bat_entries(self) -> int:
        """Entries the BAT holds (payload and, between them, sector bitmap entries)."""
        chunks = -(-self.payload_blocks // self.chunk_ratio)
        if self.has_parent:
            return chunks * (self.chunk_ratio + 1)
        return self.payload_blocks + (self.payload_blocks - 1) // self.chunk_ratio


def parse_metadata(data: bytes) -> Parameters:
    """The parameters in a metadata region (its bytes, from its start)."""
    items = metadata_items(data)
    try:
        block_size, flags = struct.unpack_from("<II", items[FILE_PARAMETERS])
        (virtual_size,) = struct.unpack_from("<Q", items[VIRTUAL_DISK_SIZE])
        (sector,) = struct.unpack_from("<I", items[LOGICAL_SECTOR_SIZE])
    except (KeyError, struct.error):
        raise VhdxError("metadata without file parameters, disk size or sector size") from None
    if block_size < (1 << 20) or block_size > (256 << 20) or block_size & (block_size - 1):
        raise VhdxError(f"block size {block_size}")
    if sector not in (512, 4096):
        raise VhdxError(f"logical sector size {sector}")
    if virtual_size == 0 or virtual_size > (64 << 40) or virtual_size % sector:
        raise VhdxError(f"virtual size {virtual_size}")
    return Parameters(block_size, sector, virtual_size, bool(flags & 2))


def metadata_items(data: bytes) -> dict[uuid.UUID, bytes]:
    """The items of a metadata region (its bytes, from its start), by GUID."""
    if len(data) < 32 or data[:8] != b"metadata":
        raise VhdxError("no metadata table signature")
    (count,) = struct.unpack_from("<H", data, 10)
    if count > _MAX_METADATA or 32 + 32 * count > len(data):
        raise VhdxError(f"metadata table of {count} entries")
    items: dict[uuid.UUID, bytes] = {}
    for index in range(count):
        base = 32 + 32 * index
        guid = uuid.UUID(bytes_le=data[base : base + 16])
        offset, length = struct.unpack_from("<II", data, base + 16)
        if length and (offset < 64 * 1024 or offset + length > len(data)):
            raise VhdxError("metadata item outside its region")
        items[guid] = data[offset : offset + length]
    return items


def data_extents(bat: bytes, parameters: Parameters) -> list[tuple[int, int]]:
    """``(offset, length)`` of the virtual disk's blocks that hold data (fully present),
    merged; every other block reads as zeros. A disk with a parent is mapped by
    :func:`.vhdx_parent.differencing_blocks` instead."""
    if parameters.has_parent:
        raise VhdxError("a differencing VHDX")
    entries = parameters.bat_entries
    if len(bat) < 8 * entries:
        raise VhdxError(f"BAT of {len(bat)} bytes for {entries} entries")
    values = struct.unpack_from(f"<{entries}Q", bat)
    ratio = parameters.chunk_ratio
    size = parameters.block_size
    extents: list[tuple[int, int]] = []
    for block in range(parameters.payload_blocks):
        state = values[block + block // ratio] & 7
        if state in _NO_DATA:
            continue
        if state != BLOCK_FULLY_PRESENT:
            raise VhdxError(f"payload block {block} in state {state}")
        start = block * size
        length = min(size, parameters.virtual_size - start)
        if extents and extents[-1][0] + extents[-1][1] == start:
            extents[-1] = (extents[-1][0], extents[-1][1] + length)
        else:
            extents.append((start, length))
    return extents
