"""The emulator's own fixed VHD footer check, against footers qemu-img writes and damaged
copies of them (built here byte by byte, not with azrestore.formats)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.vhd_check import check_fixed_vhd_footer, footer_checksum
from tests.support.tools import needs

MiB = 1024 * 1024
SIZE = 32 * MiB

pytestmark = needs("qemu-img")


def _qemu_vhd(tmp_path: Path, subformat: str, *, force_size: bool = True) -> tuple[bytes, int]:
    """The last 512 bytes and the size of a 32 MiB VHD that qemu-img creates."""
    qemu_img = shutil.which("qemu-img")
    assert qemu_img is not None
    path = tmp_path / f"{subformat}.vhd"
    options = f"subformat={subformat}" + (",force_size=on" if force_size else "")
    subprocess.run(
        [qemu_img, "create", "-q", "-f", "vpc", "-o", options, str(path), str(SIZE)],
        check=True,
        capture_output=True,
    )
    data = path.read_bytes()
    return data[-512:], len(data)


def _sealed(footer: bytearray) -> bytes:
    """``footer`` with its checksum recomputed (the one's complement of its byte sum)."""
    footer[64:68] = bytes(4)
    footer[64:68] = struct.pack(">I", ~sum(footer) & 0xFFFFFFFF)
    return bytes(footer)


def _patched(offset: int, value: bytes) -> Callable[[bytes], bytes]:
    def patch(footer: bytes) -> bytes:
        changed = bytearray(footer)
        changed[offset : offset + len(value)] = value
        return _sealed(changed)

    return patch


def _invalid_vhd(footer: bytes, size: int) -> str:
    with pytest.raises(ArmError) as caught:
        check_fixed_vhd_footer(footer, size, disk="disk 'd'")
    assert caught.value.status == 400
    assert caught.value.code == "InvalidVhd"
    return caught.value.message


def test_a_qemu_fixed_vhd_passes(tmp_path: Path) -> None:
    footer, size = _qemu_vhd(tmp_path, "fixed")
    assert size == SIZE + 512
    check_fixed_vhd_footer(footer, size)
    # qemu's own checksum is what the emulator computes.
    assert footer_checksum(footer) == struct.unpack(">I", footer[64:68])[0]


def test_a_qemu_dynamic_vhd_is_refused(tmp_path: Path) -> None:
    footer, size = _qemu_vhd(tmp_path, "dynamic")
    assert "has disk type 3 (dynamic); only fixed VHDs" in _invalid_vhd(footer, size)


def test_a_qemu_vhd_sized_by_geometry_is_not_whole_mib(tmp_path: Path) -> None:
    # Without force_size qemu rounds the size up to its CHS geometry: 32 MiB + 8 KiB.
    footer, size = _qemu_vhd(tmp_path, "fixed", force_size=False)
    message = _invalid_vhd(footer, size)
    assert f"in bytes {size - 512} (32.0 MiB) must be a multiple of MiB" in message


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (_patched(0, b"notavhd!"), "Disk is expected to have cookie value 'conectix'"),
        (lambda footer: bytes(512), "Disk is expected to have cookie value 'conectix'"),
        (
            lambda footer: footer[:64] + bytes([footer[64] ^ 1]) + footer[65:],
            "checksum",
        ),
        (lambda footer: footer[:100] + bytes([footer[100] ^ 1]) + footer[101:], "checksum"),
        (_patched(60, struct.pack(">I", 4)), "disk type 4 (differencing)"),
        (_patched(8, struct.pack(">I", 0)), "the reserved bit 0x00000002 must be set"),
        (_patched(12, struct.pack(">I", 0x00020000)), "file format version 0x00020000"),
        (_patched(16, struct.pack(">Q", 512)), "data offset 0x0000000000000200"),
        (_patched(48, struct.pack(">Q", SIZE - MiB)), "expected 33554944 - 512 bytes"),
        (lambda footer: footer[:511], "a VHD footer is 512 bytes, not 511"),
    ],
    ids=[
        "cookie",
        "zeros",
        "checksum-field",
        "checksum-contents",
        "differencing",
        "features",
        "version",
        "data-offset",
        "size-mismatch",
        "short",
    ],
)
def test_damaged_footers_are_refused(
    tmp_path: Path, damage: Callable[[bytes], bytes], fragment: str
) -> None:
    footer, size = _qemu_vhd(tmp_path, "fixed")
    assert fragment in _invalid_vhd(damage(footer), size)


def test_a_blob_of_another_size_is_refused(tmp_path: Path) -> None:
    footer, size = _qemu_vhd(tmp_path, "fixed")
    message = _invalid_vhd(footer, size + MiB)
    assert f"gives a virtual size of {SIZE} bytes, but the blob holds {size + MiB}" in message


def test_the_temporary_feature_bit_is_allowed(tmp_path: Path) -> None:
    footer, size = _qemu_vhd(tmp_path, "fixed")
    check_fixed_vhd_footer(_patched(8, struct.pack(">I", 3))(footer), size)
