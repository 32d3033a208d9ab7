"""GPT disks built by sgdisk/sfdisk (checked against sfdisk --json and blkid), and
synthetic tables (hypothesis)."""

from __future__ import annotations

import struct
import uuid
import zlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.formats.layout import DiskLayout
from azrestore.formats.partition_types import (
    BIOS_BOOT_GUID,
    ESP_GUID,
    LINUX_FS_GUID,
    LINUX_LVM_GUID,
    LINUX_SWAP_GUID,
    MS_BASIC_DATA_GUID,
    MS_RESERVED_GUID,
)
from azrestore.formats.partitions import analyze_disk
from azrestore.formats.sizes import MiB
from tests.support.disks import mkfs, needs_tools, new_disk, put, sfdisk, sgdisk
from tests.support.partitions import analyze, assert_agrees_with_tools


@needs_tools
def test_gpt_uefi_linux(tmp_path: Path) -> None:
    disk = new_disk(tmp_path)
    sfdisk(
        disk,
        f'label: gpt\nstart=2048, size=32M, type={ESP_GUID}, name="EFI System"\n'
        f'type={LINUX_FS_GUID}, name="root"\n',
    )
    put(disk, MiB, mkfs(tmp_path, "vfat", 32 * MiB))
    put(disk, 33 * MiB, mkfs(tmp_path, "ext4", 40 * MiB))
    layout = analyze(disk)
    assert (layout.scheme, layout.firmware, layout.os_family, layout.generation) == (
        "gpt",
        "uefi",
        "linux",
        "V2",
    )
    esp, root = layout.partitions
    assert (esp.type, esp.type_name, esp.name, esp.filesystem) == (
        ESP_GUID,
        "EFI system partition",
        "EFI System",
        "fat32" if esp.filesystem == "fat32" else "fat16",
    )
    assert (root.type, root.type_name, root.filesystem) == (
        LINUX_FS_GUID,
        "Linux filesystem",
        "ext4",
    )
    assert layout.warnings == ()
    assert_agrees_with_tools(disk, layout)


@needs_tools
def test_gpt_uefi_windows(tmp_path: Path) -> None:
    disk = new_disk(tmp_path)
    sgdisk(
        disk,
        *("-n", "1:2048:+16M", "-t", "1:ef00", "-c", "1:EFI system partition"),
        *("-n", "2:0:+16M", "-t", "2:0c01", "-c", "2:Microsoft reserved partition"),
        *("-n", "3:0:+40M", "-t", "3:0700", "-c", "3:Basic data partition"),
        *("-n", "4:0:0", "-t", "4:2700"),
    )
    put(disk, MiB, mkfs(tmp_path, "vfat", 16 * MiB))
    put(disk, 33 * MiB, mkfs(tmp_path, "ntfs", 40 * MiB))
    layout = analyze(disk)
    assert (layout.scheme, layout.firmware, layout.os_family, layout.generation) == (
        "gpt",
        "uefi",
        "windows",
        "V2",
    )
    types = [p.type for p in layout.partitions]
    assert types[:3] == [ESP_GUID, MS_RESERVED_GUID, MS_BASIC_DATA_GUID]
    assert [p.type_name for p in layout.partitions][1:] == [
        "Microsoft reserved",
        "Microsoft basic data",
        "Windows recovery environment",
    ]
    assert [p.filesystem for p in layout.partitions][1:] == [None, "ntfs", None]
    assert_agrees_with_tools(disk, layout)


@needs_tools
def test_gpt_windows_without_esp(tmp_path: Path) -> None:
    """MSR + basic data with NTFS: Windows, but nothing to boot from, so no generation."""
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(
        disk,
        f"label: gpt\nstart=2048, size=16M, type={MS_RESERVED_GUID}\ntype={MS_BASIC_DATA_GUID}\n",
    )
    put(disk, 17 * MiB, mkfs(tmp_path, "ntfs", 32 * MiB))
    layout = analyze(disk)
    assert (layout.scheme, layout.firmware, layout.os_family, layout.generation) == (
        "gpt",
        "unknown",
        "windows",
        None,
    )
    assert_agrees_with_tools(disk, layout)


@needs_tools
def test_gpt_bios_boot_partition(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(disk, f"label: gpt\nstart=2048, size=1M, type={BIOS_BOOT_GUID}\ntype={LINUX_FS_GUID}\n")
    put(disk, 2 * MiB, mkfs(tmp_path, "ext4", 32 * MiB))
    layout = analyze(disk)
    assert layout.partitions[0].type == BIOS_BOOT_GUID
    assert (layout.firmware, layout.os_family, layout.generation) == ("bios", "linux", "V1")
    assert_agrees_with_tools(disk, layout)


@needs_tools
def test_gpt_legacy_bios_bootable_attribute(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(disk, f'label: gpt\nstart=2048, type={LINUX_FS_GUID}, attrs="LegacyBIOSBootable"\n')
    layout = analyze(disk)
    assert layout.partitions[0].bootable
    assert (layout.firmware, layout.generation) == ("bios", "V1")
    assert_agrees_with_tools(disk, layout)


@needs_tools
def test_hybrid_mbr_is_gpt(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 64 * MiB)
    # -h 2: a hybrid MBR, 0xEE plus a 0x83 copy of partition 2.
    sgdisk(disk, "-n", "1:2048:+16M", "-t", "1:ef00", "-n", "2:0:0", "-t", "2:8300", "-h", "2")
    put(disk, 17 * MiB, mkfs(tmp_path, "ext4", 32 * MiB))
    lba0 = disk.read_bytes()[:512]
    assert {lba0[446 + 4], lba0[462 + 4]} == {0xEE, 0x83}
    layout = analyze(disk)
    assert layout.scheme == "gpt"
    assert [p.number for p in layout.partitions] == [1, 2]
    assert (layout.firmware, layout.os_family, layout.generation) == ("uefi", "linux", "V2")
    assert_agrees_with_tools(disk, layout)


@needs_tools
def test_damaged_primary_gpt_uses_backup(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(disk, f"label: gpt\nstart=2048, size=16M, type={ESP_GUID}\ntype={LINUX_FS_GUID}\n")
    expected = analyze(disk).partitions
    assert len(expected) == 2
    put(disk, 512 + 40, b"\xff")  # inside the primary header: its CRC no longer matches
    layout = analyze(disk)
    assert layout.partitions == expected
    assert any("backup" in warning for warning in layout.warnings)


@needs_tools
def test_gpt_without_protective_mbr(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(disk, f"label: gpt\nstart=2048, type={ESP_GUID}\n")
    put(disk, 0, bytes(512))
    layout = analyze(disk)
    assert (layout.scheme, layout.firmware) == ("gpt", "uefi")
    assert any("protective" in warning for warning in layout.warnings)


@needs_tools
def test_empty_gpt(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 32 * MiB)
    sgdisk(disk, "-o")
    layout = analyze(disk)
    assert layout == DiskLayout("gpt", (), "unknown", "unknown", None)
    assert_agrees_with_tools(disk, layout)


GPT_TYPES = [ESP_GUID, LINUX_FS_GUID, LINUX_LVM_GUID, LINUX_SWAP_GUID, MS_BASIC_DATA_GUID]


def build_gpt(disk_sectors: int, parts: list[tuple[int, int, str, str]]) -> bytearray:
    """A minimal GPT (protective MBR, primary header and 128 entries) in memory."""
    disk = bytearray(34 * 512)
    disk[446:462] = struct.pack("<B3xB3xII", 0, 0xEE, 1, min(disk_sectors - 1, 0xFFFFFFFF))
    disk[510:512] = b"\x55\xaa"
    entries = bytearray(128 * 128)
    for index, (first, last, type_guid, name) in enumerate(parts):
        entries[index * 128 : (index + 1) * 128] = (
            uuid.UUID(type_guid).bytes_le
            + uuid.uuid4().bytes_le
            + struct.pack("<QQQ", first, last, 0)
            + name.encode("utf-16-le").ljust(72, b"\0")
        )
    header = bytearray(
        b"EFI PART"
        + struct.pack("<IIII", 0x00010000, 92, 0, 0)
        + struct.pack("<QQQQ", 1, disk_sectors - 1, 34, disk_sectors - 34)
        + uuid.uuid4().bytes_le
        + struct.pack("<QIII", 2, 128, 128, zlib.crc32(entries))
    )
    header[16:20] = struct.pack("<I", zlib.crc32(header))
    disk[512 : 512 + 92] = header
    disk[1024 : 1024 + len(entries)] = entries
    return disk


@st.composite
def gpt_partitions(draw: st.DrawFn) -> list[tuple[int, int, str, str]]:
    parts = []
    sector = 2048
    for _ in range(draw(st.integers(0, 6))):
        sector += draw(st.integers(0, 4096))
        length = draw(st.integers(1, 1 << 20))
        # Basic multilingual plane only: 36 characters fill the 72-byte name.
        name = draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0xD7FF), max_size=36))
        parts.append((sector, sector + length - 1, draw(st.sampled_from(GPT_TYPES)), name))
        sector += length
    return parts


@settings(max_examples=60)
@given(gpt_partitions())
def test_synthetic_gpt_round_trip(parts: list[tuple[int, int, str, str]]) -> None:
    disk_sectors = (parts[-1][1] if parts else 2048) + 2048
    image = bytes(build_gpt(disk_sectors, parts))

    def read(offset: int, length: int) -> bytes:
        return image[offset : offset + length]  # the rest of the disk reads as zeros

    layout = analyze_disk(read, disk_sectors * 512)
    assert layout.scheme == "gpt"
    assert [(p.start, p.size, p.type, p.name) for p in layout.partitions] == [
        (first * 512, (last - first + 1) * 512, kind, name) for first, last, kind, name in parts
    ]
    assert [p.number for p in layout.partitions] == list(range(1, len(parts) + 1))
    assert layout.firmware == ("uefi" if ESP_GUID in [p[2] for p in parts] else "unknown")
    # No complaint about the table (the backup header is absent, the primary is fine).
    assert set(layout.warnings) <= {"the disk holds both Windows and Linux partitions"}
