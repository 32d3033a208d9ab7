"""The OS family / generation decision: the family vote, and what a layout says about
an OS disk."""

from __future__ import annotations

from pathlib import Path

from azrestore.formats.layout import DiskLayout, Partition
from azrestore.formats.os_disk import OsDiskKind, os_disk_kind
from azrestore.formats.partition_types import (
    BIOS_BOOT_GUID,
    ESP_GUID,
    LINUX_FS_GUID,
    MS_BASIC_DATA_GUID,
)
from azrestore.formats.sizes import MiB
from tests.support.disks import mkfs, needs_tools, new_disk, put, sfdisk
from tests.support.partitions import analyze, assert_agrees_with_tools


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


def test_os_disk_kind_says_where_it_is_unsure() -> None:
    dual = DiskLayout(
        "gpt",
        (
            Partition(1, MiB, MiB, BIOS_BOOT_GUID, "BIOS boot partition"),
            Partition(2, 2 * MiB, 16 * MiB, ESP_GUID, "EFI system partition", filesystem="fat16"),
            Partition(3, 18 * MiB, 40 * MiB, LINUX_FS_GUID, "Linux filesystem", filesystem="ext4"),
        ),
        "uefi",
        "linux",
        "V2",
    )
    assert os_disk_kind(dual) == OsDiskKind("linux", "V2", boots_uefi=True, boots_bios=True)
    bare = DiskLayout("mbr", (Partition(1, MiB, MiB, "0x83", "Linux"),), "unknown", "linux", None)
    assert os_disk_kind(bare) == OsDiskKind("linux", None, boots_uefi=False, boots_bios=False)
    # An 0xEF logical partition: UEFI could boot it, though the firmware is not told.
    esp = DiskLayout("mbr", (Partition(5, MiB, MiB, "0xef", "EFI"),), "unknown", "unknown", None)
    assert os_disk_kind(esp) == OsDiskKind(None, None, boots_uefi=True, boots_bios=False)
    bios = DiskLayout("mbr", (), "bios", "unknown", "V1")
    assert os_disk_kind(bios) == OsDiskKind(None, "V1", boots_uefi=False, boots_bios=True)
