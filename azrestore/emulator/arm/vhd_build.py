"""The simulator's own fixed VHD footer, written where Azure writes one itself: the tail of
an empty disk or one made from an image, and the new tail of a resized disk.

Written from the VHD specification, like :mod:`.vhd_check` and for the same reason:
independent of :mod:`azrestore.formats`, whose footers the code under test writes.
"""

from __future__ import annotations

import struct
import time
import uuid
from typing import Final

from azrestore.emulator.arm.vhd_check import FOOTER_BYTES, footer_checksum

__all__ = ["build_fixed_vhd_footer", "chs_geometry"]

# Field order of the specification's footer (big-endian): cookie, features, file format
# version, data offset, time stamp, creator application, creator version, creator host OS,
# original size, current size, disk geometry (cylinders, heads, sectors per track), disk
# type, checksum, unique id, saved state, and 427 reserved zero bytes.
_LAYOUT: Final = struct.Struct(">8sIIQI4sI4sQQHBBII16sB427x")
_CHECKSUM_AT: Final = 64
#: 2000-01-01 00:00:00 UTC, the specification's epoch, in Unix seconds.
_EPOCH: Final = 946_684_800
# Azure writes "wa\0\0"; qemu before 10.0 sizes such a VHD by its geometry, which is short
# of the disk, so the simulator writes what qemu-img's force_size converter writes, a
# creator every reader sizes by the current size.
_CREATOR: Final = (b"qem2", 0x00050003, b"Wi2k")


def chs_geometry(sectors: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) for ``sectors`` 512-byte sectors, by the
    specification's appendix ("CHS calculation")."""
    total = min(sectors, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        per_track, heads = 255, 16
        cylinder_heads = total // per_track
    else:
        per_track = 17
        cylinder_heads = total // per_track
        heads = (cylinder_heads + 1023) // 1024
        if heads < 4:
            heads = 4
        if cylinder_heads >= heads * 1024 or heads > 16:
            per_track, heads = 31, 16
            cylinder_heads = total // per_track
        if cylinder_heads >= heads * 1024:
            per_track, heads = 63, 16
            cylinder_heads = total // per_track
    return cylinder_heads // heads, heads, per_track


def build_fixed_vhd_footer(disk_bytes: int) -> bytes:
    """The 512-byte footer of a fixed VHD whose disk is ``disk_bytes`` long (a multiple of
    512), stamped now, with a fresh unique id."""
    if disk_bytes <= 0 or disk_bytes % 512:
        raise ValueError(f"a fixed VHD's disk is a positive multiple of 512 bytes: {disk_bytes}")
    cylinders, heads, per_track = chs_geometry(disk_bytes // 512)
    application, version, host = _CREATOR
    unsummed = _LAYOUT.pack(
        b"conectix",
        0x00000002,  # features: only the bit the specification reserves, always set
        0x00010000,  # file format version 1.0
        0xFFFFFFFFFFFFFFFF,  # data offset: a fixed disk has no dynamic header
        max(0, int(time.time()) - _EPOCH),
        application,
        version,
        host,
        disk_bytes,  # original size
        disk_bytes,  # current size
        cylinders,
        heads,
        per_track,
        2,  # disk type: fixed
        0,  # checksum, computed below
        uuid.uuid4().bytes,
        0,  # saved state
    )
    assert len(unsummed) == FOOTER_BYTES
    checksum = footer_checksum(unsummed).to_bytes(4, "big")
    return unsummed[:_CHECKSUM_AT] + checksum + unsummed[_CHECKSUM_AT + 4 :]
