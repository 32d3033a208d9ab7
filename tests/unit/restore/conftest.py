"""Fixtures of the restore-plan tests: running in a temporary folder, and disk images."""

from __future__ import annotations

from pathlib import Path

import pytest

from azrestore.formats.partition_types import BIOS_BOOT_GUID, ESP_GUID, LINUX_FS_GUID
from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import fixed_vhd_footer
from tests.support.disks import mkfs, new_disk, put, sfdisk


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path, so that plans load as ``plan.yaml`` and messages start with it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="package")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Disk images, built once: read-only for every test."""
    work = tmp_path_factory.mktemp("images")
    built: dict[str, Path] = {}

    def disk(name: str, size: int = 64 * MiB) -> Path:
        built[name] = new_disk(work, size, f"{name}.raw")
        return built[name]

    # GPT, EFI system partition (FAT) + Linux filesystem (ext4): UEFI, Linux.
    uefi_linux = disk("uefi-linux", 96 * MiB)
    sfdisk(uefi_linux, f"label: gpt\nstart=2048, size=32M, type={ESP_GUID}\ntype={LINUX_FS_GUID}\n")
    put(uefi_linux, MiB, mkfs(work, "vfat", 32 * MiB))
    put(uefi_linux, 33 * MiB, mkfs(work, "ext4", 40 * MiB))
    # MBR, one active NTFS partition: BIOS, Windows.
    bios_windows = disk("bios-windows")
    sfdisk(bios_windows, "label: dos\nstart=2048, size=65536, type=7, bootable\n")
    put(bios_windows, MiB, mkfs(work, "ntfs", 32 * MiB))
    # MBR, active ext4: BIOS, Linux.
    bios_linux = disk("bios-linux")
    sfdisk(bios_linux, "label: dos\nstart=2048, type=83, bootable\n")
    put(bios_linux, MiB, mkfs(work, "ext4", 32 * MiB))
    # GPT with a BIOS boot partition and an ESP (cloud images boot either way).
    dual = disk("dual-linux", 96 * MiB)
    sfdisk(
        dual,
        f"label: gpt\nstart=2048, size=1M, type={BIOS_BOOT_GUID}\n"
        f"size=16M, type={ESP_GUID}\ntype={LINUX_FS_GUID}\n",
    )
    put(dual, 3 * MiB, mkfs(work, "vfat", 16 * MiB))
    put(dual, 19 * MiB, mkfs(work, "ext4", 40 * MiB))
    # GPT with only an ESP: UEFI, OS family unknown.
    esp_only = disk("esp-only")
    sfdisk(esp_only, f"label: gpt\nstart=2048, type={ESP_GUID}\n")
    put(esp_only, MiB, mkfs(work, "vfat", 32 * MiB))
    # MBR, ext4, no active flag and no boot code: firmware unknown.
    no_boot = disk("no-boot-linux")
    sfdisk(no_boot, "label: dos\nstart=2048, type=83\n")
    put(no_boot, MiB, mkfs(work, "ext4", 32 * MiB))
    # A data disk without a partition table, a whole-disk file system, an empty file, a VHD.
    disk("blank", 32 * MiB)
    built["whole-ntfs"] = mkfs(work, "ntfs", 32 * MiB)
    built["small"] = new_disk(work, 16 * MiB, "small.raw")
    built["empty"] = new_disk(work, 0, "empty.raw")
    vhd = work / "disk.vhd"
    with vhd.open("wb") as file:
        file.truncate(MiB)
        file.seek(MiB)
        file.write(fixed_vhd_footer(MiB))
    built["vhd"] = vhd
    return built
