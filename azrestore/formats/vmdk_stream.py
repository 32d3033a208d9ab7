"""The structures of a streamOptimized VMDK (VMware's Virtual Disk Format 5.0, as qemu's
block/vmdk.c reads it): the sparse extent header (at the start, or copied into the footer
when its grain directory is written at the end), the grain directory and grain tables,
and the grain markers before each compressed grain.

Pure: every function takes the bytes of one structure. What is malformed raises
:class:`VmdkStreamError` (one line); what is well formed but not read here (another
version, an unknown flag, uncompressed grains) makes :func:`parse_header` return None, so
that the image is read by qemu instead.
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass

from ..errors import InputError

SECTOR = 512
MAGIC = b"KDMV"
#: ``gdOffset`` of an image whose grain directory follows its grains: the footer's header
#: copy (the second-to-last sector before the end-of-stream marker) holds the real one.
GD_AT_END = 0xFFFFFFFFFFFFFFFF
#: The footer, its header copy and the end-of-stream marker: the file's last 3 sectors.
FOOTER_BYTES = 3 * SECTOR

FLAG_NL_DETECT = 1 << 0
FLAG_REDUNDANT_GT = 1 << 1
FLAG_ZERO_GRAIN = 1 << 2
FLAG_COMPRESSED = 1 << 16
FLAG_MARKERS = 1 << 17
_KNOWN_FLAGS = FLAG_NL_DETECT | FLAG_REDUNDANT_GT | FLAG_ZERO_GRAIN
_REQUIRED_FLAGS = FLAG_COMPRESSED | FLAG_MARKERS
COMPRESSION_DEFLATE = 1

MARKER_END_OF_STREAM = 0
MARKER_GRAIN_TABLE = 1
MARKER_GRAIN_DIRECTORY = 2
MARKER_FOOTER = 3
#: A grain marker: the grain's first sector (uint64) and its compressed size (uint32).
MARKER_BYTES = 12

#: A grain table entry of an unallocated grain, and of a zeroed one (with the flag).
GTE_UNALLOCATED = 0
GTE_ZEROED = 1

#: Largest grain read here (qemu's default is 64 KiB); larger ones are left to qemu.
MAX_GRAIN_SECTORS = 2048
#: Grain table entries at most (qemu's limit too).
MAX_GTES = 512

# magic, version, flags, capacity, grainSize, descriptorOffset, descriptorSize,
# numGTEsPerGT, rgdOffset, gdOffset, overHead, uncleanShutdown, 4 newline check bytes,
# compressAlgorithm.
_HEADER = struct.Struct("<4sIIQQQQIQQQB4sH")
_MARKER = struct.Struct("<QII")  # a metadata marker: 0, 0 and its type
_GRAIN = struct.Struct("<QI")


class VmdkStreamError(InputError):
    """A streamOptimized VMDK structure that is malformed."""


@dataclass(frozen=True, slots=True)
class StreamHeader:
    """What a streamOptimized sparse extent header says, in bytes and entries."""

    capacity: int  # virtual size, bytes
    grain_size: int  # bytes
    gtes_per_gt: int
    gd_offset: int  # sectors, or GD_AT_END
    zeroed_grains: bool  # GT entry 1 is a zeroed grain

    @property
    def grains(self) -> int:
        """Grains of the disk (the last one may run past its end)."""
        return -(-self.capacity // self.grain_size)

    @property
    def gd_entries(self) -> int:
        """Entries of the grain directory (one per grain table)."""
        return -(-self.grains // self.gtes_per_gt)

    @property
    def gd_at_end(self) -> bool:
        return self.gd_offset == GD_AT_END


def parse_header(data: bytes) -> StreamHeader | None:
    """The header in the first 512 bytes of ``data``; None when it is not one of a
    compressed, marked stream that this reader reads (then qemu reads the image)."""
    if len(data) < _HEADER.size:
        raise VmdkStreamError("the VMDK header is cut short")
    (
        magic,
        version,
        flags,
        capacity,
        grain,
        _desc_offset,
        _desc_size,
        gtes,
        _rgd,
        gd_offset,
        _overhead,
        _unclean,
        _check,
        algorithm,
    ) = _HEADER.unpack_from(data)
    if magic != MAGIC:
        return None
    if version != 3 or flags & _REQUIRED_FLAGS != _REQUIRED_FLAGS:
        return None
    if flags & ~(_KNOWN_FLAGS | _REQUIRED_FLAGS) or algorithm != COMPRESSION_DEFLATE:
        return None
    if not 0 < grain <= MAX_GRAIN_SECTORS or grain & (grain - 1):
        return None
    if capacity == 0:  # a descriptor that names other extents: qemu's to read
        return None
    if capacity >= 1 << 32:  # past VMDK's 2 TiB (32-bit sector offsets): qemu's to judge
        return None
    if not 0 < gtes <= MAX_GTES:
        raise VmdkStreamError(f"the VMDK header says {gtes} entries per grain table")
    return StreamHeader(
        capacity=capacity * SECTOR,
        grain_size=grain * SECTOR,
        gtes_per_gt=gtes,
        gd_offset=gd_offset,
        zeroed_grains=bool(flags & FLAG_ZERO_GRAIN),
    )


def parse_footer(tail: bytes) -> StreamHeader | None:
    """The header copied into the footer: ``tail`` is the file's last 1536 bytes (footer
    marker, header, end-of-stream marker), as qemu reads it for ``GD_AT_END``."""
    if len(tail) != FOOTER_BYTES:
        raise VmdkStreamError("the VMDK is too short for its footer")
    footer = _MARKER.unpack_from(tail, 0)
    end = _MARKER.unpack_from(tail, 2 * SECTOR)
    if footer[1:] != (0, MARKER_FOOTER) or end != (0, 0, MARKER_END_OF_STREAM):
        raise VmdkStreamError("the VMDK's footer is missing (a truncated stream?)")
    if tail[SECTOR : SECTOR + 4] != MAGIC:
        raise VmdkStreamError("the VMDK's footer holds no header")
    header = parse_header(tail[SECTOR : 2 * SECTOR])
    if header is not None and header.gd_at_end:
        raise VmdkStreamError("the VMDK's footer does not say where its grain directory is")
    return header


def _entries(data: bytes, count: int, what: str) -> array[int]:
    if len(data) < 4 * count:
        raise VmdkStreamError(f"the VMDK's {what} is cut short")
    values = array("I", data[: 4 * count])
    if sys.byteorder == "big":
        values.byteswap()
    return values


def grain_directory(data: bytes, header: StreamHeader, file_sectors: int) -> array[int]:
    """The grain directory's entries (a grain table's sector, 0 for none), each checked
    to lie within the file of ``file_sectors`` sectors."""
    entries = _entries(data, header.gd_entries, "grain directory")
    table_sectors = -(-4 * header.gtes_per_gt // SECTOR)
    for index, sector in enumerate(entries):
        if sector and sector + table_sectors > file_sectors:
            raise VmdkStreamError(
                f"the VMDK's grain table {index} at sector {sector} lies past the end of"
                f" the file ({file_sectors} sectors)"
            )
    return entries


def grain_table(data: bytes, header: StreamHeader, index: int, file_size: int) -> array[int]:
    """Grain table ``index``'s entries (a grain marker's sector; 0 unallocated; 1 zeroed
    where the header says so), each marker checked to start within the file."""
    entries = _entries(data, header.gtes_per_gt, f"grain table {index}")
    last = max(entries, default=0)
    if last * SECTOR + MARKER_BYTES > file_size and not (
        last == GTE_ZEROED and header.zeroed_grains
    ):
        raise VmdkStreamError(
            f"the VMDK's grain table {index} points to sector {last}, past the end of the"
            f" file ({file_size} bytes): the file is truncated or damaged"
        )
    return entries


def parse_marker(data: bytes | memoryview, grain_size: int) -> tuple[int, int]:
    """A grain marker's ``(lba, compressed size)``, the size checked to fit two grains as
    qemu's reads do."""
    if len(data) < MARKER_BYTES:
        raise VmdkStreamError("a VMDK grain marker is cut short by the end of the file")
    lba, size = _GRAIN.unpack_from(data)
    if size == 0 or size + MARKER_BYTES > 2 * grain_size:
        raise VmdkStreamError(f"a VMDK grain marker says {size} compressed bytes")
    return lba, size
