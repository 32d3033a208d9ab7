"""Offline Windows disks for the tests: the demo's registry hives
(:mod:`azrestore.cli.demo.winhives`, made with hivexsh from hivex's own minimal hive), put
on NTFS (mkntfs, ntfs-3g) in MBR or GPT disk images; and reading values back with
hivexget, independently of azrestore's scripts.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import stat
import struct
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from azrestore.cli.demo.winhives import (
    APP,
    BOOTMGR,
    LOADER,
    OTHER_RULE,
    RDP_TCP_OFF,
    RULES,
    Keys,
    bcd_keys,
    hive,
    hivexsh,
    software_keys,
    system_keys,
)
from azrestore.formats.partition_types import ESP_GUID
from azrestore.formats.sizes import MiB
from tests.support.disks import mkfs, new_disk, put, sfdisk
from tests.support.tools import unavailable

__all__ = [
    "APP",
    "BOOTMGR",
    "LOADER",
    "OTHER_RULE",
    "RDP_TCP_OFF",
    "RULES",
    "TOOLS",
    "Keys",
    "attached",
    "bcd_keys",
    "fill",
    "gpt_disk",
    "hive",
    "hivexget",
    "hivexsh",
    "mbr_disk",
    "mounted",
    "ntfs_acl",
    "software_keys",
    "system_keys",
    "vfat_mounts",
    "windows_files",
]

#: The tools these helpers run (with root, for the mounts).
TOOLS = ("hivexsh", "hivexget", "ntfs-3g", "mkntfs", "mkfs.vfat", "sfdisk", "losetup")


@functools.cache
def vfat_mounts() -> bool:
    """Whether this kernel mounts FAT (some containers' do not: no ESP can be read there)."""
    with tempfile.TemporaryDirectory() as work:
        image = Path(work) / "fat.fs"
        with image.open("wb") as file:
            file.truncate(8 * MiB)
        subprocess.run(["mkfs.vfat", str(image)], capture_output=True, check=True)
        (Path(work) / "mnt").mkdir()
        done = subprocess.run(
            ["mount", "-o", "loop,ro", str(image), f"{work}/mnt"], capture_output=True, check=False
        )
        if done.returncode == 0:
            subprocess.run(["umount", f"{work}/mnt"], check=True)
        return done.returncode == 0


def hivexget(path: Path, key: str, name: str | None = None) -> str:
    """hivexget's answer (a value, or a key's values regedit-style), stripped."""
    command = ["hivexget", str(path), key, *([name] if name is not None else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done.stdout.strip()


@contextlib.contextmanager
def mounted(image: Path, kind: str, *, read_only: bool = False) -> Iterator[Path]:
    """A file system image mounted (ntfs-3g for NTFS, a loop mount for FAT), unmounted after."""
    where = image.with_name(image.name + ".mnt")
    where.mkdir()
    if kind == "ntfs":
        command = ["ntfs-3g", "-o", "ro" if read_only else "rw", str(image), str(where)]
    else:
        command = ["mount", "-o", "loop,ro" if read_only else "loop", str(image), str(where)]
    subprocess.run(command, check=True, capture_output=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)
        where.rmdir()


def fill(image: Path, kind: str, files: Mapping[str, Path | bytes]) -> None:
    """Put ``files`` (path in the volume: source file or bytes) into a file system image."""
    with mounted(image, kind) as root:
        for name, content in files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            data = content.read_bytes() if isinstance(content, Path) else content
            target.write_bytes(data)


def windows_files(work: Path, system: Keys | None = None) -> dict[str, Path | bytes]:
    """The files of a Windows volume the preparation reads: its SYSTEM and SOFTWARE hives."""
    return {
        "Windows/System32/config/SYSTEM": hive(work / "SYSTEM", system or system_keys()),
        "Windows/System32/config/SOFTWARE": hive(work / "SOFTWARE", software_keys()),
        "Windows/notepad.exe": b"MZ",
    }


def mbr_disk(work: Path, files: Mapping[str, Path | bytes], bcd: Keys | None = None) -> Path:
    """MBR, one active NTFS partition holding Windows and its Boot\\BCD (``bcd``'s keys)."""
    disk = new_disk(work, 64 * MiB, "mbr.raw")
    sfdisk(disk, "label: dos\nstart=2048, type=7, bootable\n")
    volume = mkfs(work, "ntfs", 63 * MiB)
    fill(volume, "ntfs", {**files, "Boot/BCD": hive(work / "BCD", bcd or bcd_keys())})
    put(disk, MiB, volume)
    return disk


def gpt_disk(work: Path, files: Mapping[str, Path | bytes]) -> Path:
    """GPT: an EFI system partition (FAT, EFI\\Microsoft\\Boot\\BCD, where this kernel
    mounts FAT), an MSR, NTFS Windows."""
    disk = new_disk(work, 96 * MiB, "gpt.raw")
    msr = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
    basic = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
    sfdisk(
        disk,
        f"label: gpt\nstart=2048, size=32M, type={ESP_GUID}\nsize=16M, type={msr}\ntype={basic}\n",
    )
    esp = mkfs(work, "vfat", 32 * MiB)
    if vfat_mounts():  # else an empty ESP
        fill(esp, "vfat", {"EFI/Microsoft/Boot/BCD": hive(work / "BCD", bcd_keys())})
    put(disk, MiB, esp)
    volume = mkfs(work, "ntfs", 46 * MiB)
    fill(volume, "ntfs", files)
    put(disk, 49 * MiB, volume)
    return disk


@contextlib.contextmanager
def attached(image: Path) -> Iterator[str]:
    """``image`` on a loop device with its partitions' nodes (made from /sys where udev
    does not make them, as in containers); all detached and removed afterwards."""
    done = subprocess.run(
        ["losetup", "--find", "--show", "--partscan", str(image)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        unavailable(f"no loop devices here: {done.stderr.strip()}")
    device = done.stdout.strip()
    name = Path(device).name
    made: list[Path] = []
    try:
        if shutil.which("udevadm"):
            subprocess.run(["udevadm", "settle"], capture_output=True, check=False)
        if not list(Path(f"/sys/block/{name}").glob(f"{name}p*")):
            subprocess.run(["partx", "--add", device], capture_output=True, check=False)
        for numbers in sorted(Path(f"/sys/block/{name}").glob(f"{name}p*/dev")):
            node = Path("/dev") / numbers.parent.name
            if not node.exists():
                major, minor = (int(n) for n in numbers.read_text().split(":"))
                os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(major, minor))
                made.append(node)
        yield device
    finally:
        for node in made:
            node.unlink(missing_ok=True)
        subprocess.run(["losetup", "--detach", device], check=False)


def ntfs_acl(path: Path) -> list[str]:
    """The NTFS security descriptor of ``path`` on an ntfs-3g mount (its ``system.ntfs_acl``
    attribute), read as "owner SID", "group SID" and "allow|deny FLAGS MASK SID" lines."""
    raw = os.getxattr(path, "system.ntfs_acl")

    def sid(offset: int) -> str:
        count = raw[offset + 1]
        authority = int.from_bytes(raw[offset + 2 : offset + 8], "big")
        subs = struct.unpack_from(f"<{count}I", raw, offset + 8)
        return f"S-{raw[offset]}-{authority}" + "".join(f"-{s}" for s in subs)

    _, _, _, owner, group, _, dacl = struct.unpack_from("<BBHIIII", raw)
    lines = [f"owner {sid(owner)}", f"group {sid(group)}"]
    if dacl:
        count = struct.unpack_from("<H", raw, dacl + 4)[0]
        at = dacl + 8
        for _ in range(count):
            kind, flags, size = struct.unpack_from("<BBH", raw, at)
            mask = struct.unpack_from("<I", raw, at + 4)[0]
            lines.append(f"{'allow' if kind == 0 else kind} {flags:#x} {mask:#x} {sid(at + 8)}")
            at += size
    return lines
