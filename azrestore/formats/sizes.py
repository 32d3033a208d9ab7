"""Size rules (512-byte pages, whole-MiB VHDs, page-blob limits) and human size parsing."""

from __future__ import annotations

SECTOR = 512
KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

#: Largest Put Page body Azure accepts.
MAX_PUT_PAGE = 4 * MiB
#: Largest page blob.
MAX_PAGE_BLOB = 8 * TiB
#: VHD footer size; a fixed VHD is the disk's bytes followed by the footer.
FOOTER_SIZE = 512
#: Largest disk we can put in a page blob: the largest whole-MiB size that leaves room
#: for the footer inside 8 TiB.
MAX_DISK_SIZE = MAX_PAGE_BLOB - MiB


def round_up(value: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``value``."""
    return -(-value // multiple) * multiple


def round_down(value: int, multiple: int) -> int:
    return value // multiple * multiple


def virtual_size(disk_size: int) -> int:
    """The VHD's virtual size for a disk: rounded up to a whole MiB, as Azure requires."""
    return round_up(disk_size, MiB)


def blob_size(disk_size: int) -> int:
    """The fixed VHD's total size (page blob size): virtual size plus the footer."""
    return virtual_size(disk_size) + FOOTER_SIZE


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": KiB,
    "mib": MiB,
    "gib": GiB,
    "tib": TiB,
}
_SIZE_PATTERN = r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*(?:/s)?\s*$"


def parse_size(text: str) -> int:
    """Parse ``4MiB``, ``256KiB``, ``200MB``, ``1.5GiB`` or ``1048576`` into bytes.

    Decimal units (kB, MB, GB, TB) are powers of 1000, binary ones (KiB, MiB, ...) powers
    of 1024. A trailing ``/s`` is accepted so that rates read naturally.
    Raises ValueError with a message that names the text.
    """
    import re  # loaded on first use (re caches the compiled pattern): start-up of convert

    match = re.match(_SIZE_PATTERN, text)
    if not match:
        raise ValueError(f"not a size: {text!r} (expected e.g. 4MiB, 256KiB, 200MB, 1.5GiB)")
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(f"unknown unit {unit!r} in {text!r} (use B, kB, MB, GB, KiB, MiB, GiB)")
    from fractions import Fraction  # loaded on first use, as re above

    value = Fraction(number) * factor  # exact: no float rounding of large sizes
    if value.denominator != 1:
        raise ValueError(f"{text!r} is not a whole number of bytes")
    return int(value)


def format_size(value: float) -> str:
    """Render a byte count with a binary unit, e.g. ``1.5 GiB``."""
    for unit, factor in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if abs(value) >= factor:
            return f"{value / factor:.1f} {unit}"
    return f"{int(value)} B"
