"""Fixed VHD footer: build, parse and validate it the way Azure does.

A fixed VHD is the disk's bytes unchanged followed by one 512-byte footer (big-endian
fields, see Microsoft's Virtual Hard Disk Image Format Specification). Writing one is
:mod:`.vhd_footer`, re-exported here.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

from .sizes import FOOTER_SIZE, MiB, format_size
from .vhd_footer import (
    _FOOTER,
    COOKIE,
    CREATOR_APPLICATION,
    CREATOR_HOST_OS,
    CREATOR_VERSION,
    DISK_TYPE_DIFFERENCING,
    DISK_TYPE_DYNAMIC,
    DISK_TYPE_FIXED,
    FEATURES_RESERVED,
    FIXED_DATA_OFFSET,
    FORMAT_VERSION,
    MAX_CHS_SECTORS,
    VHD_EPOCH,
    VhdError,
    chs_geometry,
    fixed_vhd_footer,
    footer_checksum,
    pack_footer,
    vhd_timestamp,
)

__all__ = [
    "COOKIE",
    "CREATOR_APPLICATION",
    "CREATOR_HOST_OS",
    "CREATOR_VERSION",
    "DISK_TYPE_DIFFERENCING",
    "DISK_TYPE_DYNAMIC",
    "DISK_TYPE_FIXED",
    "FEATURES_RESERVED",
    "FIXED_DATA_OFFSET",
    "FORMAT_VERSION",
    "MAX_CHS_SECTORS",
    "VHD_EPOCH",
    "VhdError",
    "VhdFooter",
    "chs_geometry",
    "fixed_vhd_footer",
    "footer_checksum",
    "pack_footer",
    "validate_fixed_vhd_footer",
    "vhd_timestamp",
]

_DISK_TYPE_NAMES = {
    0: "none",
    1: "reserved (deprecated)",
    DISK_TYPE_FIXED: "fixed",
    DISK_TYPE_DYNAMIC: "dynamic",
    DISK_TYPE_DIFFERENCING: "differencing",
}


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
        return pack_footer(*astuple(self))  # fields in on-disk order, as parse reads them

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
