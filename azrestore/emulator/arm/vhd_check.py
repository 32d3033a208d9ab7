"""The simulator's own check of a fixed VHD footer, as Azure makes it when a managed disk
upload ends (endGetAccess) or a disk is imported.

Written from the VHD specification (the footer's big-endian fields) and deliberately
independent of :mod:`azrestore.formats`: the uploader builds and verifies footers with that
code, so the emulator judging them with it too would let a bug there pass every test.

Fields read (offset, width): cookie (0, 8), features (8, 4), file format version (12, 4),
data offset (16, 8), current size (48, 8), disk type (60, 4), checksum (64, 4).
"""

from __future__ import annotations

import struct
from typing import Final

from azrestore.emulator.arm.errors import ArmError

__all__ = ["FOOTER_BYTES", "check_fixed_vhd_footer", "footer_checksum"]

FOOTER_BYTES: Final = 512
_MIB: Final = 1024 * 1024
_COOKIE: Final = b"conectix"
#: Features bit 1 is "reserved" and, says the specification, must always be set.
_FEATURES_RESERVED: Final = 0x00000002
_FORMAT_VERSION: Final = 0x00010000
#: A fixed disk has no dynamic header: its data offset is all ones.
_FIXED_DATA_OFFSET: Final = 0xFFFFFFFFFFFFFFFF
_DISK_TYPE_FIXED: Final = 2
_DISK_TYPE_NAMES: Final = {
    0: "none",
    1: "reserved (deprecated)",
    2: "fixed",
    3: "dynamic",
    4: "differencing",
}
_CHECKSUM_AT: Final = 64


def _field(footer: bytes, offset: int, fmt: str) -> int:
    value: int = struct.unpack_from(fmt, footer, offset)[0]
    return value


def footer_checksum(footer: bytes) -> int:
    """The one's complement of the sum of the footer's bytes, its checksum field as zeros."""
    total = sum(footer[:_CHECKSUM_AT]) + sum(footer[_CHECKSUM_AT + 4 :])
    return ~total & 0xFFFFFFFF


def _size_text(size: int) -> str:
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", _MIB), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _invalid(message: str) -> ArmError:
    return ArmError(400, "InvalidVhd", message)


def check_fixed_vhd_footer(footer: bytes, blob_size: int, *, disk: str = "disk") -> None:
    """Judge the last 512 bytes of a ``blob_size``-byte blob as a fixed VHD footer.

    Raises 400 InvalidVhd, worded like Azure's answers, for a footer that is not 512 bytes,
    a wrong cookie or checksum, a disk type other than fixed, a features field without the
    reserved bit, a file format version other than 1.0, a data offset other than a fixed
    disk's, a current size that is not the blob's size less the footer, or one that is not
    a whole number of MiB. ``disk`` names the disk in the messages.
    """
    if len(footer) != FOOTER_BYTES:
        raise _invalid(f"a VHD footer is {FOOTER_BYTES} bytes, not {len(footer)}")
    cookie = bytes(footer[:8])
    if cookie != _COOKIE:
        raise _invalid(
            f"The specified cookie value {cookie!r} in VHD footer indicates that {disk} is"
            " not a supported VHD. Disk is expected to have cookie value 'conectix'."
        )
    stored = _field(footer, _CHECKSUM_AT, ">I")
    expected_sum = footer_checksum(footer)
    if stored != expected_sum:
        raise _invalid(
            f"the VHD footer's checksum is 0x{stored:08x}, but its contents"
            f" sum to 0x{expected_sum:08x}: the footer is corrupt"
        )
    disk_type = _field(footer, 60, ">I")
    if disk_type != _DISK_TYPE_FIXED:
        name = _DISK_TYPE_NAMES.get(disk_type, "unknown")
        raise _invalid(
            f"The VHD footer of {disk} has disk type {disk_type} ({name}); only fixed VHDs"
            f" (disk type {_DISK_TYPE_FIXED}) are supported."
        )
    features = _field(footer, 8, ">I")
    if not features & _FEATURES_RESERVED:
        raise _invalid(
            f"The VHD footer of {disk} has features 0x{features:08x}: the reserved bit"
            f" 0x{_FEATURES_RESERVED:08x} must be set."
        )
    version = _field(footer, 12, ">I")
    if version != _FORMAT_VERSION:
        raise _invalid(
            f"The VHD footer of {disk} has file format version 0x{version:08x}; only"
            f" version 0x{_FORMAT_VERSION:08x} is supported."
        )
    data_offset = _field(footer, 16, ">Q")
    if data_offset != _FIXED_DATA_OFFSET:
        raise _invalid(
            f"The VHD footer of {disk} has data offset 0x{data_offset:016x}; a fixed VHD's"
            f" is 0x{_FIXED_DATA_OFFSET:016x}."
        )
    current_size = _field(footer, 48, ">Q")
    expected = blob_size - FOOTER_BYTES
    if current_size != expected:
        raise _invalid(
            f"The VHD footer of {disk} gives a virtual size of {current_size} bytes,"
            f" but the blob holds {blob_size} bytes: expected {blob_size} - 512 bytes for"
            f" the VHD footer ({expected} in this case)."
        )
    if current_size % _MIB:
        raise _invalid(
            f"The virtual size of {disk} in bytes {current_size}"
            f" ({_size_text(current_size)}) must be a multiple of MiB."
        )
