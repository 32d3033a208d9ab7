"""Fixtures of the end-to-end tests: the backed-up VM images a restore plan names."""

from __future__ import annotations

from pathlib import Path

import pytest

from azrestore.formats.sizes import MiB
from tests.support.disks import mkfs, new_disk, put, sfdisk
from tests.support.restore import ESP, LINUX_FS


def _web01_and_dc01(work: Path) -> None:
    """web01's backup (Linux GPT/UEFI) and dc01's (Windows MBR/BIOS) in ``work``."""
    linux = new_disk(work, 64 * MiB, "web01-os.raw")
    sfdisk(linux, f"label: gpt\nstart=2048, size=16M, type={ESP}\ntype={LINUX_FS}\n")
    put(linux, MiB, mkfs(work, "vfat", 16 * MiB))
    put(linux, 17 * MiB, mkfs(work, "ext4", 40 * MiB))
    windows = new_disk(work, 64 * MiB, "dc01-os.raw")
    sfdisk(windows, "label: dos\nstart=2048, size=65536, type=7, bootable\n")
    put(windows, MiB, mkfs(work, "ntfs", 32 * MiB))


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two VMs' backups: Linux GPT/UEFI (web01) and Windows MBR/BIOS (dc01)."""
    work = tmp_path_factory.mktemp("images")
    _web01_and_dc01(work)
    return work


@pytest.fixture(scope="module")
def backups(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three VMs' backups: Linux GPT/UEFI, Windows MBR/BIOS, Linux MBR with two data disks."""
    work = tmp_path_factory.mktemp("backups")
    _web01_and_dc01(work)
    db = new_disk(work, 48 * MiB, "db01-os.raw")
    sfdisk(db, "label: dos\nstart=2048, type=83, bootable\n")
    put(db, MiB, mkfs(work, "ext4", 32 * MiB))
    for name in ("db01-data0.raw", "db01-data1.raw"):
        data = new_disk(work, 40 * MiB + 4096, name)
        put(data, 5 * MiB, b"database pages" * 1000)
    return work
