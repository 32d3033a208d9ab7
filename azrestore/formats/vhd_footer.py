"""Writing a fixed VHD footer: its layout, the geometry and the checksum.

A fixed VHD is the disk's bytes unchanged followed by one 512-byte footer (big-endian
fields, see Microsoft's Virtual Hard Disk Image Format Specification). Reading and
judging footers is :mod:`.vhd`, which re-exports all of this; ``convert`` imports only
this module, because :mod:`.vhd`'s dataclass slows its start (dataclasses loads inspect
and ast).
"""

from __future__ import annotations

import os
import struct
import time

from .sizes import FOOTER_SIZE, SECTOR

COOKIE = b"conectix"
FEATURES_RESERVED = 0x00000002
FORMAT_VERSION = 0x00010000
#: Data offset of a fixed disk: there is no dynamic header.
FIXED_DATA_OFFSET = 0xFFFF_FFFF_FFFF_FFFF

DISK_TYPE_FIXED = 2
DISK_TYPE_DYNAMIC = 3
DISK_TYPE_DIFFERENCING = 4

# Creator application. qemu sizes a VHD by its CHS geometry (which rounds the size down)
# for some creators and by current_size for others; we need current_size, because our
# geometry follows the specification and usually covers less than the disk.
# qemu/qemu block/vpc.c up to 9.x (Debian's 7.2 here) lists the current_size creators:
#     return !!strncmp(footer->creator_app, "win ", 4) &&
#            !!strncmp(footer->creator_app, "qem2", 4) &&
#            !!strncmp(footer->creator_app, "d2v ", 4) &&
#            !!strncmp(footer->creator_app, "CTXS", 4) &&
#            !!memcmp(footer->creator_app, "tap", 4));
# and from 10.0 ("vpc: Read images exported from Azure correctly") only these use CHS:
#     return !strncmp(footer->creator_app, "vpc ", 4) ||
#            !strncmp(footer->creator_app, "qemu", 4);
# Azure's own "wa\0\0" is therefore read short by qemu < 10.0. "qem2" is what
# `qemu-img convert -O vpc -o subformat=fixed,force_size` (the reference converter)
# writes, and every qemu since force_size existed sizes it by current_size.
CREATOR_APPLICATION = b"qem2"
#: Creator version qemu writes with "qem2" (Virtual PC 2007, 5.3).
CREATOR_VERSION = 0x00050003
#: Creator host OS: Windows, what qemu, Hyper-V and Azure all write.
CREATOR_HOST_OS = b"Wi2k"

#: The VHD epoch, 2000-01-01 00:00:00 UTC, in Unix seconds.
VHD_EPOCH = 946_684_800
#: Largest geometry (cylinders * heads * sectors per track) the specification allows.
MAX_CHS_SECTORS = 65535 * 16 * 255

# cookie, features, version, data offset, timestamp, creator app, creator version,
# creator host OS, original size, current size, cylinders, heads, sectors/track, disk type,
# checksum, unique id, saved state; then 427 reserved bytes.
_FOOTER = struct.Struct(">8sIIQI4sI4sQQHBBII16sB427x")
_CHECKSUM_OFFSET = 64
_CHECKSUM_FIELD = 14
assert _FOOTER.size == FOOTER_SIZE


class VhdError(ValueError):
    """A footer that is not a valid (fixed) VHD footer."""


def chs_geometry(total_sectors: int) -> tuple[int, int, int]:
    """``(cylinders, heads, sectors_per_track)`` for a disk of ``total_sectors`` 512-byte
    sectors, by the VHD specification's algorithm (which may round the size down)."""
    if total_sectors < 0:
        raise VhdError(f"negative sector count {total_sectors}")
    total = min(total_sectors, MAX_CHS_SECTORS)
    if total >= 65535 * 16 * 63:
        sectors_per_track = 255
        heads = 16
        cylinder_times_heads = total // sectors_per_track
    else:
        sectors_per_track = 17
        cylinder_times_heads = total // sectors_per_track
        heads = max((cylinder_times_heads + 1023) // 1024, 4)
        if cylinder_times_heads >= heads * 1024 or heads > 16:
            sectors_per_track = 31
            heads = 16
            cylinder_times_heads = total // sectors_per_track
        if cylinder_times_heads >= heads * 1024:
            sectors_per_track = 63
            heads = 16
            cylinder_times_heads = total // sectors_per_track
    return cylinder_times_heads // heads, heads, sectors_per_track


def footer_checksum(footer: bytes) -> int:
    """One's complement of the byte sum of a 512-byte footer, its checksum field read as 0."""
    if len(footer) != FOOTER_SIZE:
        raise VhdError(f"a VHD footer is {FOOTER_SIZE} bytes, not {len(footer)}")
    total = sum(footer) - sum(footer[_CHECKSUM_OFFSET : _CHECKSUM_OFFSET + 4])
    return ~total & 0xFFFF_FFFF


def pack_footer(*fields: bytes | int) -> bytes:
    """The 512-byte footer from its 17 fields in on-disk order (cookie, features, ...,
    saved state); the checksum field's value is ignored and computed from the others."""
    values = list(fields)
    values[_CHECKSUM_FIELD] = 0
    try:
        unsummed = _FOOTER.pack(*values)
    except struct.error as exc:
        raise VhdError(f"a VHD footer field is out of range: {exc}") from None
    checksum = footer_checksum(unsummed)
    return (
        unsummed[:_CHECKSUM_OFFSET] + checksum.to_bytes(4, "big") + unsummed[_CHECKSUM_OFFSET + 4 :]
    )


def vhd_timestamp(unix_seconds: float | None = None) -> int:
    """Seconds since 2000-01-01 00:00 UTC (now by default), clamped to the field's range."""
    seconds = time.time() if unix_seconds is None else unix_seconds
    return min(max(int(seconds) - VHD_EPOCH, 0), 0xFFFF_FFFF)


def fixed_vhd_footer(
    virtual_size: int, *, timestamp: int | None = None, unique_id: bytes | None = None
) -> bytes:
    """The 512-byte footer of a fixed VHD whose disk part is ``virtual_size`` bytes.

    ``timestamp`` is in VHD seconds (since 2000-01-01 UTC; default now) and ``unique_id``
    16 bytes (default a random UUID). The geometry follows the specification, as Azure
    writes it; the creator application makes readers size the disk by current size.
    """
    if virtual_size <= 0 or virtual_size % SECTOR:
        raise VhdError(
            f"a fixed VHD's size must be a positive multiple of {SECTOR} bytes, not {virtual_size}"
        )
    if unique_id is None:
        unique_id = _random_uuid()
    if len(unique_id) != 16:
        raise VhdError(f"unique_id must be 16 bytes, not {len(unique_id)}")
    cylinders, heads, sectors_per_track = chs_geometry(virtual_size // SECTOR)
    return pack_footer(
        COOKIE,
        FEATURES_RESERVED,
        FORMAT_VERSION,
        FIXED_DATA_OFFSET,
        vhd_timestamp() if timestamp is None else timestamp,
        CREATOR_APPLICATION,
        CREATOR_VERSION,
        CREATOR_HOST_OS,
        virtual_size,  # original size
        virtual_size,  # current size
        cylinders,
        heads,
        sectors_per_track,
        DISK_TYPE_FIXED,
        0,  # checksum: computed by pack_footer
        bytes(unique_id),
        0,  # saved state
    )


def _random_uuid() -> bytes:
    """A random (version 4) UUID's 16 bytes, as ``uuid.uuid4().bytes`` makes them; uuid
    itself is not imported because it loads platform (start-up time of ``convert``)."""
    data = bytearray(os.urandom(16))
    data[6] = (data[6] & 0x0F) | 0x40  # version 4
    data[8] = (data[8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(data)
