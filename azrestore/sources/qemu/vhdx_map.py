"""The data extents of a VHDX read from its own allocation table (:mod:`...formats.vhdx`),
because qemu's vhdx driver reports none: without them a dynamic VHDX is read whole.
Blocking: called while the image is opened, in a worker thread."""

from __future__ import annotations

from typing import BinaryIO

from ...formats import vhdx

#: Largest metadata region and BAT read (a 64 TiB disk of 1 MiB blocks has a 512 MiB BAT;
#: one past this keeps qemu's block status instead).
_MAX_REGION = 256 << 20


def vhdx_extents(path: str) -> list[tuple[int, int]] | None:
    """The VHDX's data extents, or None when its tables cannot be read here (then block
    status is used: qemu has opened the image, so it is the judge of its structure)."""
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
            return vhdx.data_extents(_read(handle, bat.offset, bat.length), parameters)
    except (OSError, vhdx.VhdxError):
        return None


def _read(handle: BinaryIO, offset: int, length: int) -> bytes:
    handle.seek(offset)
    data = handle.read(length)
    if len(data) != length:
        raise vhdx.VhdxError("a table past the end of the file")
    return data
