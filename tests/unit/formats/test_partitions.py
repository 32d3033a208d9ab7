"""Partition tables built by sgdisk/sfdisk and file systems by mkfs, checked against our
reading and against sfdisk --json and blkid as independent readers."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import uuid
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.formats.filesystems import sniff_filesystem
from azrestore.formats.layout import DiskLayout, Partition
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
from tests.support.disks import (
    mkfs,
    needs_tools,
    new_disk,
    put,
    run,
    sfdisk,
    sgdisk,
)

# --- helpers ------------------------------------------------------------------------------


def analyze(disk: Path) -> DiskLayout:
    fd = os.open(disk, os.O_RDONLY)
    try:
        return analyze_disk(
            lambda offset, length: os.pread(fd, length, offset), disk.stat().st_size
        )
    finally:
        os.close(fd)


def sfdisk_json(disk: Path) -> dict[str, object]:
    table: dict[str, object] = json.loads(run("sfdisk", "--json", str(disk)))["partitiontable"]
    return table


def blkid_type(disk: Path, offset: int, size: int) -> str | None:
    result = subprocess.run(
        ["blkid", "-p", "-O", str(offset), "-S", str(size), "-o", "export", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    fields = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    kind = fields.get("TYPE")
    if kind == "vfat":
        return fields.get("VERSION", "").lower()  # FAT16 -> fat16, as we name them
    return kind


def assert_agrees_with_tools(disk: Path, layout: DiskLayout) -> None:
    """Our partitions are sfdisk's, and the file systems we name are blkid's."""
    table = sfdisk_json(disk)
    assert layout.scheme == {"gpt": "gpt", "dos": "mbr"}[str(table["label"])]
    theirs = table.get("partitions", [])
    assert isinstance(theirs, list)
    assert len(layout.partitions) == len(theirs)
    for ours, entry in zip(layout.partitions, theirs, strict=True):
        assert ours.number == int(entry["node"].removeprefix(str(disk)))
        assert ours.start == entry["start"] * 512
        assert ours.size == entry["size"] * 512
        if layout.scheme == "gpt":
            assert ours.type == entry["type"]
            assert ours.name == entry.get("name", "")
            assert ours.bootable == ("LegacyBIOSBootable" in entry.get("attrs", ""))
        else:
            assert int(ours.type, 16) == int(entry["type"], 16)
            assert ours.bootable == entry.get("bootable", False)
            if int(entry["type"], 16) in (0x05, 0x0F, 0x85):
                continue  # the extended container itself holds no file system
        assert ours.filesystem == blkid_type(disk, ours.start, ours.size)


# --- real images --------------------------------------------------------------------------


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
def test_basic_data_holding_ext4_is_linux(tmp_path: Path) -> None:
    """The file system found wins over the partition type (old Linux installers)."""
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(disk, f"label: gpt\nstart=2048, size=8M, type={ESP_GUID}\ntype={MS_BASIC_DATA_GUID}\n")
    put(disk, 9 * MiB, mkfs(tmp_path, "ext4", 32 * MiB))
    layout = analyze(disk)
    assert layout.partitions[1].type == MS_BASIC_DATA_GUID
    assert layout.partitions[1].filesystem == "ext4"
    assert layout.os_family == "linux"
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
def test_empty_gpt(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 32 * MiB)
    sgdisk(disk, "-o")
    layout = analyze(disk)
    assert layout == DiskLayout("gpt", (), "unknown", "unknown", None)
    assert_agrees_with_tools(disk, layout)


@needs_tools
def test_empty_mbr(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 32 * MiB)
    sfdisk(disk, "label: dos\n")
    layout = analyze(disk)
    assert layout == DiskLayout("mbr", (), "unknown", "unknown", None)
    assert_agrees_with_tools(disk, layout)


def test_no_table(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 8 * MiB)
    assert analyze(disk) == DiskLayout("none", (), "unknown", "unknown", None)
    assert analyze_disk(lambda offset, length: b"", 0).scheme == "none"
    assert analyze_disk(lambda offset, length: b"\x55\xaa", 100).scheme == "none"


@needs_tools
@pytest.mark.parametrize(("kind", "family"), [("ext4", "linux"), ("ntfs", "windows")])
def test_whole_disk_file_system(tmp_path: Path, kind: str, family: str) -> None:
    """No table, a file system on the whole disk (an NTFS boot sector ends in 0x55AA
    like an MBR, and must not be read as one)."""
    disk = mkfs(tmp_path, kind, 32 * MiB)
    layout = analyze(disk)
    assert (layout.scheme, layout.filesystem, layout.os_family) == ("none", kind, family)
    assert layout.partitions == ()


@needs_tools
def test_windows_and_linux_on_one_disk(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 128 * MiB)
    sfdisk(
        disk,
        f"label: gpt\nstart=2048, size=16M, type={ESP_GUID}\n"
        f"size=64M, type={MS_BASIC_DATA_GUID}\ntype={LINUX_FS_GUID}\n",
    )
    put(disk, 17 * MiB, mkfs(tmp_path, "ntfs", 64 * MiB))
    put(disk, 81 * MiB, mkfs(tmp_path, "ext4", 32 * MiB))
    layout = analyze(disk)
    assert layout.os_family == "windows"  # the larger
    assert any("both" in warning for warning in layout.warnings)


@needs_tools
def test_partition_past_the_end(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(disk, "label: dos\nstart=2048, type=83\n")
    os.truncate(disk, 32 * MiB)
    layout = analyze(disk)
    assert layout.partitions[0].size == 63 * MiB
    assert any("past the end" in warning for warning in layout.warnings)


def test_to_json() -> None:
    layout = DiskLayout(
        "mbr",
        (Partition(1, MiB, 2 * MiB, "0x83", "Linux", bootable=True, filesystem="ext4"),),
        "bios",
        "linux",
        "V1",
    )
    assert json.loads(json.dumps(layout.to_json())) == {
        "scheme": "mbr",
        "partitions": [
            {
                "number": 1,
                "start": MiB,
                "size": 2 * MiB,
                "type": "0x83",
                "type_name": "Linux",
                "name": "",
                "bootable": True,
                "filesystem": "ext4",
            }
        ],
        "firmware": "bios",
        "os_family": "linux",
        "generation": "V1",
        "filesystem": None,
        "warnings": [],
    }


# --- sniffing -----------------------------------------------------------------------------


def test_sniff_signatures() -> None:
    def at(offset: int, data: bytes, size: int = 4096) -> bytes:
        buffer = bytearray(size)
        buffer[offset : offset + len(data)] = data
        return bytes(buffer)

    assert sniff_filesystem(at(0, b"XFSB")) == "xfs"
    assert sniff_filesystem(at(4086, b"SWAPSPACE2")) == "swap"
    assert sniff_filesystem(at(4086, b"SWAP-SPACE")) == "swap"
    assert sniff_filesystem(at(0, b"LUKS\xba\xbe")) == "crypto_LUKS"
    assert sniff_filesystem(at(3, b"-FVE-FS-")) == "BitLocker"
    assert sniff_filesystem(at(3, b"EXFAT   ")) == "exfat"
    assert sniff_filesystem(at(54, b"FAT12   ")) == "fat12"
    assert sniff_filesystem(bytes(4096), btrfs_magic=b"_BHRfS_M") == "btrfs"
    ext = at(1024 + 56, b"\x53\xef")
    assert sniff_filesystem(ext) == "ext2"
    ext3 = bytearray(ext)
    ext3[1024 + 0x5C] = 0x04  # has_journal
    assert sniff_filesystem(bytes(ext3)) == "ext3"
    ext3[1024 + 0x60] = 0x40  # extents
    assert sniff_filesystem(bytes(ext3)) == "ext4"
    assert sniff_filesystem(bytes(4096)) is None
    assert sniff_filesystem(b"") is None


# --- synthetic tables (hypothesis) --------------------------------------------------------

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


# --- inspect_image (the async wrapper over a real file) -----------------------------------


@needs_tools
@pytest.mark.anyio
async def test_inspect_image(tmp_path: Path) -> None:
    from azrestore.sources.report import inspect_image

    disk = new_disk(tmp_path, 64 * MiB + 4096)  # not whole MiB: the VHD rounds up
    sfdisk(disk, f"label: gpt\nstart=2048, size=16M, type={ESP_GUID}\ntype={LINUX_FS_GUID}\n")
    put(disk, 17 * MiB, mkfs(tmp_path, "ext4", 32 * MiB))
    report = await inspect_image(disk)
    assert report.layout == analyze(disk)
    assert report.disk_size == 64 * MiB + 4096
    assert 0 < report.allocated_bytes < report.disk_size
    assert report.virtual_size == 65 * MiB
    assert report.blob_size == 65 * MiB + 512
    info = json.loads(json.dumps(report.to_json()))
    assert info["path"] == str(disk)
    assert (info["partition_scheme"], info["firmware"], info["os_family"]) == (
        "gpt",
        "uefi",
        "linux",
    )
    assert info["generation"] == "V2"
    assert [p["filesystem"] for p in info["partitions"]] == [None, "ext4"]
    # 65 MiB = 133120 sectors: 17 sectors per track fails, 31 fits (VHD spec algorithm).
    assert info["vhd"] == {
        "virtual_size": 65 * MiB,
        "blob_size": 65 * MiB + 512,
        "geometry": {"cylinders": 978, "heads": 8, "sectors_per_track": 17},
    }


@pytest.mark.anyio
async def test_inspect_image_refuses_what_is_not_a_raw_disk(tmp_path: Path) -> None:
    from azrestore.errors import InputError
    from azrestore.formats.vhd import fixed_vhd_footer
    from azrestore.sources.report import inspect_image

    with pytest.raises(InputError, match="no such file"):
        await inspect_image(tmp_path / "missing.img")
    vhd = tmp_path / "disk.vhd"
    with vhd.open("wb") as file:
        file.truncate(MiB)
        file.seek(MiB)
        file.write(fixed_vhd_footer(MiB))
    with pytest.raises(InputError, match="VHD"):
        await inspect_image(vhd)
