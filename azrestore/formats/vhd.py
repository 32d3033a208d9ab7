"""Fixed VHD footer: build, parse and validate it the way Azure does.

A fixed VHD is the disk's bytes unchanged followed by one 512-byte footer (big-endian
fields, see the VHD specification and ``/work/shared/AZURE-FACTS.md``).
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass

from .sizes import FOOTER_SIZE, SECTOR, MiB, format_size

COOKIE = b"conectix"
FEATURES_RESERVED = 0x00000002
FORMAT_VERSION = 0x00010000
#: Data offset of a fixed disk: there is no dynamic header.
FIXED_DATA_OFFSET = 0xFFFF_FFFF_FFFF_FFFF

DISK_TYPE_FIXED = 2
DISK_TYPE_DYNAMIC = 3
DISK_TYPE_DIFFERENCING = 4
_DISK_TYPE_NAMES = {
    0: "none",
    1: "reserved (deprecated)",
    DISK_TYPE_FIXED: "fixed",
    DISK_TYPE_DYNAMIC: "dynamic",
    DISK_TYPE_DIFFERENCING: "differencing",
}

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


def _disk_type_name(disk_type: int) -> str:
    return _DISK_TYPE_NAMES.get(disk_type, "unknown")


@dataclass(frozen=True)
class VhdFooter:
    """The fields of a VHD footer, as stored (sizes in bytes, text fields as raw bytes)."""

    cookie: bytes
    features: int
    format_version: int
    data_offset: int
    timestamp: int
    creator_application: bytes
    creator_version: int
    creator_host_os: bytes
    original_size: int
    current_size: int
    cylinders: int
    heads: int
    sectors_per_track: int
    disk_type: int
    checksum: int
    unique_id: bytes
    saved_state: int

    def pack(self) -> bytes:
        """The 512-byte footer. The checksum is computed from the other fields;
        ``self.checksum`` (what :meth:`parse` read) is not used."""
        for name, value, width in (
            ("cookie", self.cookie, 8),
            ("creator_application", self.creator_application, 4),
            ("creator_host_os", self.creator_host_os, 4),
            ("unique_id", self.unique_id, 16),
        ):
            if len(value) != width:
                raise VhdError(f"{name} must be {width} bytes, not {len(value)}")
        try:
            unsummed = _FOOTER.pack(
                self.cookie,
                self.features,
                self.format_version,
                self.data_offset,
                self.timestamp,
                self.creator_application,
                self.creator_version,
                self.creator_host_os,
                self.original_size,
                self.current_size,
                self.cylinders,
                self.heads,
                self.sectors_per_track,
                self.disk_type,
                0,
                self.unique_id,
                self.saved_state,
            )
        except struct.error as exc:
            raise VhdError(f"a VHD footer field is out of range: {exc}") from None
        checksum = footer_checksum(unsummed)
        return (
            unsummed[:_CHECKSUM_OFFSET]
            + checksum.to_bytes(4, "big")
            + unsummed[_CHECKSUM_OFFSET + 4 :]
        )

    @classmethod
    def parse(cls, data: bytes) -> VhdFooter:
        """Parse a 512-byte footer; raise :class:`VhdError` for a wrong length, cookie or
        checksum. The disk type and sizes are not judged here (see
        :func:`validate_fixed_vhd_footer`)."""
        if len(data) != FOOTER_SIZE:
            raise VhdError(f"a VHD footer is {FOOTER_SIZE} bytes, not {len(data)}")
        footer = cls(*_FOOTER.unpack(bytes(data)))
        if footer.cookie != COOKIE:
            raise VhdError(
                f"the VHD footer's cookie is {footer.cookie!r}, not a supported VHD:"
                " expected cookie 'conectix'"
            )
        expected = footer_checksum(data)
        if footer.checksum != expected:
            raise VhdError(
                f"the VHD footer's checksum is 0x{footer.checksum:08x}, but its contents"
                f" sum to 0x{expected:08x}: the footer is corrupt"
            )
        return footer

    @property
    def disk_type_name(self) -> str:
        """``fixed``, ``dynamic``, ``differencing``, ... for the disk type field."""
        return _disk_type_name(self.disk_type)

    @property
    def geometry(self) -> tuple[int, int, int]:
        """``(cylinders, heads, sectors_per_track)``."""
        return self.cylinders, self.heads, self.sectors_per_track


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
    footer = VhdFooter(
        cookie=COOKIE,
        features=FEATURES_RESERVED,
        format_version=FORMAT_VERSION,
        data_offset=FIXED_DATA_OFFSET,
        timestamp=vhd_timestamp() if timestamp is None else timestamp,
        creator_application=CREATOR_APPLICATION,
        creator_version=CREATOR_VERSION,
        creator_host_os=CREATOR_HOST_OS,
        original_size=virtual_size,
        current_size=virtual_size,
        cylinders=cylinders,
        heads=heads,
        sectors_per_track=sectors_per_track,
        disk_type=DISK_TYPE_FIXED,
        checksum=0,
        unique_id=bytes(unique_id),
        saved_state=0,
    )
    return footer.pack()


def validate_fixed_vhd_footer(footer: bytes, blob_size: int, *, disk: str = "disk") -> VhdFooter:
    """Check the last 512 bytes of a ``blob_size``-byte blob as Azure does when a managed
    disk upload ends (or a disk is imported); return the parsed footer.

    Raises :class:`VhdError`, worded like Azure's InvalidVhd answers, for a wrong cookie
    or checksum, a disk type other than fixed, a current size that is not the blob's size
    less the footer, or one that is not a whole number of MiB. ``disk`` names the disk in
    the messages.
    """
    if len(footer) != FOOTER_SIZE:
        raise VhdError(f"a VHD footer is {FOOTER_SIZE} bytes, not {len(footer)}")
    cookie = bytes(footer[:8])
    if cookie != COOKIE:
        raise VhdError(
            f"The specified cookie value {cookie!r} in VHD footer indicates that {disk} is"
            " not a supported VHD. Disk is expected to have cookie value 'conectix'."
        )
    parsed = VhdFooter.parse(footer)
    if parsed.disk_type != DISK_TYPE_FIXED:
        raise VhdError(
            f"The VHD footer of {disk} has disk type {parsed.disk_type}"
            f" ({parsed.disk_type_name}); only fixed VHDs (disk type {DISK_TYPE_FIXED})"
            " are supported."
        )
    expected = blob_size - FOOTER_SIZE
    if parsed.current_size != expected:
        raise VhdError(
            f"The VHD footer of {disk} gives a virtual size of {parsed.current_size} bytes,"
            f" but the blob holds {blob_size} bytes: expected {blob_size} - 512 bytes for"
            f" the VHD footer ({expected} in this case)."
        )
    if parsed.current_size % MiB:
        raise VhdError(
            f"The virtual size of {disk} in bytes {parsed.current_size}"
            f" ({format_size(parsed.current_size)}) must be a multiple of MiB."
        )
    return parsed


def _random_uuid() -> bytes:
    """A random (version 4) UUID's 16 bytes, as ``uuid.uuid4().bytes`` makes them; uuid
    itself is not imported because it loads platform (start-up time of ``convert``)."""
    data = bytearray(os.urandom(16))
    data[6] = (data[6] & 0x0F) | 0x40  # version 4
    data[8] = (data[8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(data)
