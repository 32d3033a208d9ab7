"""The data extents of a VHDX read from its own allocation table (:mod:`...formats.vhdx`),
because qemu's vhdx driver reports none: without them a dynamic VHDX is read whole; and
where those blocks lie in the file, to read them from it (:mod:`.hostmap`).
Blocking: called while the image is opened, in a worker thread."""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from ...formats import vhdx
from .hostmap import HostMap

#: Largest metadata region and BAT read (a 64 TiB disk of 1 MiB blocks has a 512 MiB BAT;
#: one past this keeps qemu's block status instead).
_MAX_REGION = 256 << 20


def vhdx_extents(path: str) -> list[tuple[int, int]] | None:
    """The VHDX's data extents, or None when its tables cannot be read here (then block
    status is used: qemu has opened the image, so it is the judge of its structure)."""
    tables = _tables(path)
    if tables is None:
        return None
    try:
        return vhdx.data_extents(*tables)
    except vhdx.VhdxError:
        return None


def vhdx_host_map(path: str) -> HostMap | None:
    """Where the VHDX's fully present payload blocks lie in its file (the BAT entry's
    FileOffsetMB), for reading them straight from it; None when its tables cannot be read
    here or point past the file's end (then everything is read through qemu-nbd)."""
    tables = _tables(path)
    if tables is None:
        return None
    bat, parameters = tables
    entries = parameters.bat_entries
    if len(bat) < 8 * entries:
        return None
    values = struct.unpack_from(f"<{entries}Q", bat)
    ratio, size = parameters.chunk_ratio, parameters.block_size
    try:
        file_size = os.path.getsize(path)
    except OSError:
        return None
    ranges = HostMap()
    for block in range(parameters.payload_blocks):
        value = values[block + block // ratio]
        if value & 7 != vhdx.BLOCK_FULLY_PRESENT:
            continue
        start = block * size
        length = min(size, parameters.virtual_size - start)
        host = (value >> 20) << 20
        if host == 0 or host + length > file_size:
            return None
        ranges.add(start, length, host)
    return ranges if len(ranges) else None


def _tables(path: str) -> tuple[bytes, vhdx.Parameters] | None:
    """The BAT and the parameters of a VHDX without a parent, or None."""
    try:
        with open(path, "rb") as handle:
            regions = vhdx.parse_region_table(
                _read(handle, vhdx.REGION_TABLE_OFFSET, vhdx.REGION_TABLE_SIZE)
            )
            meta = regions[vhdx.METADATA_GUID]
            bat = regions[vhdx.BAT_GUID]
            if max(meta.length, bat.length) > _MAX_REGION:
                return None
            parameters = vhdx.parse_metadata(_read(handle, meta.offset, meta.length))
            if parameters.has_parent:
                return None
            return _read(handle, bat.offset, bat.length), parameters
    except (OSError, KeyError, vhdx.VhdxError):
        return None


def _read(handle: BinaryIO, offset: int, length: int) -> bytes:
    handle.seek(offset)
    data = handle.read(length)
    if len(data) != length:
        raise vhdx.VhdxError("a table past the end of the file")
    return data
