"""MBR disks built by sfdisk (checked against sfdisk --json and blkid), logical
partitions, and synthetic tables (hypothesis)."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.formats.layout import DiskLayout, Partition
from azrestore.formats.partition_types import ESP_GUID
from azrestore.formats.partitions import analyze_disk
from azrestore.formats.sizes import MiB
from tests.support.disks import mkfs, needs_tools, new_disk, put, sfdisk
from tests.support.partitions import analyze, assert_agrees_with_tools


@needs_tools
def test_mbr_without_0xee_ignores_a_stale_gpt_header(tmp_path: Path) -> None:
    gpt = new_disk(tmp_path, 64 * MiB, "gpt.img")
    sfdisk(gpt, f"label: gpt\nstart=2048, type={ESP_GUID}\n")
    mbr = new_disk(tmp_path, 64 * MiB, "mbr.img")
    sfdisk(mbr, "label: dos\nstart=2048, type=83\n")
    put(gpt, 0, mbr.read_bytes()[:512])
    layout = analyze(gpt)
    assert layout.scheme == "mbr"
    assert [p.type for p in layout.partitions] == ["0x83"]
    assert any("GPT header" in warning for warning in layout.warnings)


@needs_tools
def test_mbr_active_ntfs(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(disk, "label: dos\nstart=2048, size=65536, type=7, bootable\n")
    put(disk, MiB, mkfs(tmp_path, "ntfs", 32 * MiB))
    layout = analyze(disk)
    assert (layout.scheme, layout.firmware, layout.os_family, layout.generation) == (
        "mbr",
        "bios",
        "windows",
        "V1",
    )
    (partition,) = layout.partitions
    assert partition == Partition(
        number=1,
        start=MiB,
        size=32 * MiB,
        type="0x07",
        type_name="HPFS/NTFS/exFAT",
        bootable=True,
        filesystem="ntfs",
    )
    assert_agrees_with_tools(disk, layout)


@needs_tools
def test_mbr_linux_boot_flag(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(disk, "label: dos\nstart=2048, type=83, bootable\n")
    put(disk, MiB, mkfs(tmp_path, "ext4", 32 * MiB))
    layout = analyze(disk)
    assert (layout.scheme, layout.firmware, layout.os_family, layout.generation) == (
        "mbr",
        "bios",
        "linux",
        "V1",
    )
    assert layout.partitions[0].bootable
    assert layout.partitions[0].filesystem == "ext4"
    assert_agrees_with_tools(disk, layout)


@needs_tools
def test_mbr_without_boot_flag_or_code_has_unknown_firmware(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(disk, "label: dos\nstart=2048, type=83\n")
    assert disk.read_bytes()[440:444] != bytes(4)  # sfdisk writes a disk signature ...
    layout = analyze(disk)
    # ... which is not boot code.
    assert (layout.firmware, layout.os_family, layout.generation) == ("unknown", "linux", None)
    put(disk, 0, b"\xfa\x31\xc0")  # boot code: cli; xor ax, ax
    assert (analyze(disk).firmware, analyze(disk).generation) == ("bios", "V1")


@needs_tools
def test_mbr_esp_is_uefi(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(disk, "label: dos\nstart=2048, size=32768, type=ef\nstart=34816, type=83\n")
    put(disk, MiB, mkfs(tmp_path, "vfat", 16 * MiB))
    layout = analyze(disk)
    assert (layout.firmware, layout.os_family, layout.generation) == ("uefi", "linux", "V2")
    assert_agrees_with_tools(disk, layout)


@needs_tools
def test_mbr_lvm(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(disk, "label: dos\nstart=2048, type=8e\n")
    layout = analyze(disk)
    assert layout.partitions[0].type == "0x8e"
    assert layout.partitions[0].type_name == "Linux LVM"
    assert layout.partitions[0].filesystem is None
    assert (layout.firmware, layout.os_family, layout.generation) == ("unknown", "linux", None)
    # An LVM2 physical volume label in the partition's second sector (as pvcreate writes).
    label = b"LABELONE" + struct.pack("<QII", 1, 0, 32) + b"LVM2 001"
    put(disk, MiB + 512, label)
    assert analyze(disk).partitions[0].filesystem == "LVM2_member"


@needs_tools
def test_mbr_logical_partitions(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(
        disk,
        "label: dos\n"
        "start=2048, size=65536, type=83, bootable\n"
        "start=67584, type=5\n"
        "start=69632, size=16384, type=82\n"
        "start=88064, size=16384, type=83\n",
    )
    put(disk, MiB, mkfs(tmp_path, "ext4", 32 * MiB))
    put(disk, 69632 * 512, mkfs(tmp_path, "swap", 8 * MiB))
    layout = analyze(disk)
    assert [p.number for p in layout.partitions] == [1, 2, 5, 6]
    assert [p.filesystem for p in layout.partitions] == ["ext4", None, "swap", None]
    assert layout.os_family == "linux"
    assert_agrees_with_tools(disk, layout)


@needs_tools
def test_empty_mbr(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 32 * MiB)
    sfdisk(disk, "label: dos\n")
    layout = analyze(disk)
    assert layout == DiskLayout("mbr", (), "unknown", "unknown", None)
    assert_agrees_with_tools(disk, layout)


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.sampled_from([0x07, 0x0C, 0x82, 0x83, 0x8E, 0xEF, 0xFD]),
            st.integers(1, 1 << 16),
        ),
        min_size=0,
        max_size=4,
    )
)
def test_synthetic_mbr_round_trip(parts: list[tuple[bool, int, int]]) -> None:
    mbr = bytearray(512)
    mbr[510:] = b"\x55\xaa"
    lba = 2048
    expected = []
    for index, (active, kind, sectors) in enumerate(parts):
        mbr[446 + 16 * index : 462 + 16 * index] = struct.pack(
            "<B3xB3xII", 0x80 if active else 0, kind, lba, sectors
        )
        expected.append((index + 1, lba * 512, sectors * 512, f"0x{kind:02x}", active))
        lba += sectors
    image = bytes(mbr)
    layout = analyze_disk(lambda offset, length: image[offset : offset + length], lba * 512)
    assert layout.scheme == "mbr"
    assert [(p.number, p.start, p.size, p.type, p.bootable) for p in layout.partitions] == expected
    if any(active for active, _, _ in parts):
        assert layout.firmware == "bios"
    elif any(kind == 0xEF for _, kind, _ in parts):
        assert layout.firmware == "uefi"
    else:
        assert layout.firmware == "unknown"
