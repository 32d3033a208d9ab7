"""The emulator's own fixed VHD footer, read by qemu-img and by the emulator's own check,
and its geometry against the one qemu-img writes for the same size."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from azrestore.emulator.arm.vhd_build import build_fixed_vhd_footer
from azrestore.emulator.arm.vhd_check import check_fixed_vhd_footer
from azrestore.formats.sizes import GiB, MiB
from tests.support.tools import needs

pytestmark = needs("qemu-img")

SIZES = [20 * MiB, 127 * MiB, 1 * GiB, 130 * GiB]


def _qemu_footer(tmp_path: Path, size: int) -> bytes:
    """The footer of a fixed VHD qemu-img makes for ``size``: without force_size it rounds
    the size up to one its geometry covers exactly."""
    path = tmp_path / "qemu.vhd"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=fixed", str(path), str(size)],
        check=True,
        capture_output=True,
    )
    with path.open("rb") as file:
        file.seek(-512, 2)
        return file.read()


@pytest.mark.parametrize("size", SIZES)
def test_qemu_reads_the_footer(tmp_path: Path, size: int) -> None:
    path = tmp_path / "disk.vhd"
    with path.open("wb") as file:
        file.truncate(size)
        file.seek(size)
        file.write(build_fixed_vhd_footer(size))
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output", "json", "-f", "vpc", str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert info["virtual-size"] == size
    check_fixed_vhd_footer(build_fixed_vhd_footer(size), size + 512, disk="d")


@pytest.mark.parametrize("size", SIZES)
def test_geometry_is_qemus(tmp_path: Path, size: int) -> None:
    qemu = _qemu_footer(tmp_path, size)
    exact = int.from_bytes(qemu[48:56], "big")  # current size: one qemu's geometry covers
    # cylinders (2 bytes), heads, sectors per track: offsets 56 to 60 of the footer
    assert build_fixed_vhd_footer(exact)[56:60] == qemu[56:60]


def test_every_footer_is_unique() -> None:
    assert build_fixed_vhd_footer(MiB)[68:84] != build_fixed_vhd_footer(MiB)[68:84]


@pytest.mark.parametrize("size", [0, -512, 1000])
def test_refuses_sizes_that_are_no_fixed_disk(size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 512"):
        build_fixed_vhd_footer(size)
