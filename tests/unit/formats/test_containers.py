"""Container formats are recognised by signature; raw disks are not."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from azrestore.formats.containers import detect_container
from azrestore.formats.vhd import VhdFooter, fixed_vhd_footer
from tests.support.tools import needs

QEMU_IMG = shutil.which("qemu-img")
needs_qemu = needs("qemu-img")


def _head_tail(path: Path) -> tuple[bytes, bytes]:
    data = path.read_bytes()
    return data[: 64 * 1024], data[-512:]


def _create(tmp_path: Path, fmt: str, *options: str, name: str = "image") -> Path:
    assert QEMU_IMG is not None
    path = tmp_path / f"{name}.{fmt}"
    command = [QEMU_IMG, "create", "-q", "-f", fmt]
    if options:
        command += ["-o", ",".join(options)]
    subprocess.run([*command, str(path), "4M"], check=True, capture_output=True)
    return path


@needs_qemu
@pytest.mark.parametrize(
    ("fmt", "options", "expected"),
    [
        ("vpc", (), "VHD (dynamic)"),
        ("vpc", ("subformat=dynamic",), "VHD (dynamic)"),
        ("vpc", ("subformat=fixed",), "VHD (fixed)"),
        ("vpc", ("subformat=fixed", "force_size=on"), "VHD (fixed)"),
        ("vhdx", (), "VHDX"),
        ("qcow2", (), "qcow2"),
        ("qcow2", ("compat=0.10",), "qcow2"),
        ("qcow", (), "qcow"),
        ("qed", (), "QED"),
        ("vmdk", (), "VMDK"),
        ("vmdk", ("subformat=streamOptimized",), "VMDK"),
        ("vmdk", ("subformat=monolithicFlat",), "VMDK"),  # the text descriptor
        ("vdi", (), "VDI"),
        ("parallels", (), "Parallels"),
    ],
)
def test_qemu_images_are_detected(
    tmp_path: Path, fmt: str, options: tuple[str, ...], expected: str
) -> None:
    path = _create(tmp_path, fmt, *options)
    assert detect_container(*_head_tail(path)) == expected


@needs_qemu
def test_raw_images_are_not_containers(tmp_path: Path) -> None:
    raw = _create(tmp_path, "raw")
    assert detect_container(*_head_tail(raw)) is None
    # The flat extent of a monolithicFlat VMDK is raw data.
    _create(tmp_path, "vmdk", "subformat=monolithicFlat", name="flat")
    assert detect_container(*_head_tail(tmp_path / "flat-flat.vmdk")) is None


def test_raw_disk_with_partition_table_is_raw() -> None:
    mbr = bytearray(512)
    mbr[:3] = b"\xeb\x63\x90"  # GRUB's jump
    mbr[446 + 4] = 0xEE
    mbr[510:] = b"\x55\xaa"
    gpt = b"EFI PART" + bytes(504)
    assert detect_container(bytes(mbr) + gpt + bytes(4096), bytes(512)) is None
    assert detect_container(b"", b"") is None
    assert detect_container(b"\x00" * 10, b"\x00" * 10) is None


def test_our_fixed_vhd_is_detected() -> None:
    footer = fixed_vhd_footer(1024 * 1024)
    assert detect_container(bytes(65536), bytes(511) + footer[:1]) is None
    assert detect_container(bytes(65536), footer) == "VHD (fixed)"


def test_old_511_byte_footer_is_detected() -> None:
    footer = fixed_vhd_footer(1024 * 1024)[:511]
    assert detect_container(bytes(65536), b"\x00" + footer) == "VHD (fixed)"


def test_differencing_vhd() -> None:
    fixed = VhdFooter.parse(fixed_vhd_footer(1024 * 1024))
    header = dataclasses.replace(fixed, disk_type=4, data_offset=512).pack()
    assert detect_container(header + bytes(1024), header) == "VHD (differencing)"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (
            b"<<< Oracle VM VirtualBox Disk Image >>>\n".ljust(64, b"\0") + b"\x7f\x10\xda\xbe",
            "VDI",
        ),
        (b"<<< Sun xVM VirtualBox Disk Image >>>\n", "VDI"),
        (b"COWD\x01\x00\x00\x00", "VMDK"),
        (b"# Disk DescriptorFile\nversion=1\n", "VMDK"),
        (b"QFI\xfb\x00\x00\x00\x03", "qcow2"),
        (b"vhdxfile", "VHDX"),
    ],
)
def test_signatures(head: bytes, expected: str) -> None:
    assert detect_container(head, b"") == expected


@pytest.mark.parametrize(
    "head", [b"QFI\xfb", b"QFI\xfb\x00\x00\x00\x00", b"QFI\xfb\x00\x00\x00\x04"]
)
def test_qcow_magic_without_a_known_version_is_raw_data(head: bytes) -> None:
    assert detect_container(head, b"") is None
    assert detect_container(head + bytes(64), b"") is None
