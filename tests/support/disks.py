"""Disk images built with the real partitioning and mkfs tools, for the tests that read them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from azrestore.formats.sizes import MiB
from tests.support.tools import needs

TOOLS = ("sgdisk", "sfdisk", "mkfs.ext4", "mkntfs", "mkfs.vfat", "mkswap", "blkid")


MISSING = [tool for tool in TOOLS if shutil.which(tool) is None]


needs_tools = needs(*TOOLS)


def run(*command: str, stdin: str | None = None) -> str:
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command}: {result.stderr}"
    return result.stdout


def new_disk(tmp_path: Path, size: int = 96 * MiB, name: str = "disk.img") -> Path:
    disk = tmp_path / name
    with disk.open("wb") as file:
        file.truncate(size)
    return disk


def sgdisk(disk: Path, *args: str) -> None:
    run("sgdisk", *args, str(disk))


def sfdisk(disk: Path, script: str) -> None:
    run("sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(disk), stdin=script)


def mkfs(tmp_path: Path, kind: str, size: int) -> Path:
    """A file system image of ``size`` bytes made by the real tool."""
    image = tmp_path / f"{kind}-{len(list(tmp_path.iterdir()))}.fs"
    with image.open("wb") as file:
        file.truncate(size)
    command = {
        "ext4": ["mkfs.ext4", "-q", "-F"],
        "ntfs": ["mkntfs", "-F", "-Q", "-q"],
        "vfat": ["mkfs.vfat"],
        "swap": ["mkswap"],
    }[kind]
    run(*command, str(image))
    return image


def put(disk: Path, offset: int, content: Path | bytes) -> None:
    data = content.read_bytes() if isinstance(content, Path) else content
    with disk.open("r+b") as file:
        file.seek(offset)
        file.write(data)
