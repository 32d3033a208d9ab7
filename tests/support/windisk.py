"""Offline Windows disks for the tests: registry hives made with hivexsh from hivex's own
minimal hive, put on NTFS (mkntfs, ntfs-3g) in MBR or GPT disk images; and reading values
back with hivexget, independently of azrestore's scripts.

``data/hivex-minimal.hive`` is ``images/minimal`` of libguestfs/hivex (commit aef7470a,
2010; LGPL-2.1-or-later, like the rest of hivex): a valid hive holding only a root key,
since hivex cannot create an empty hive.
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

from azrestore.formats.partition_types import ESP_GUID
from azrestore.formats.sizes import MiB
from tests.support.disks import mkfs, new_disk, put, sfdisk
from tests.support.tools import unavailable

MINIMAL_HIVE = Path(__file__).parent / "data" / "hivex-minimal.hive"
#: The tools these helpers run (with root, for the mounts).
TOOLS = ("hivexsh", "hivexget", "ntfs-3g", "mkntfs", "mkfs.vfat", "sfdisk", "losetup")
#: Values in hivexsh's setval syntax, by key path (backslashes, from the hive's root).
Keys = Mapping[str, Mapping[str, str]]

BOOTMGR = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"
LOADER = "{4b3b1a6e-5b7c-11ee-8c99-0242ac120002}"
RULES = "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules"
APP = "%SystemRoot%\\system32\\svchost.exe"
RDP_TCP_OFF = (
    f"v2.30|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=3389|App={APP}|Svc=termservice"
    "|Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|"
)
OTHER_RULE = (
    "v2.30|Action=Allow|Active=FALSE|Dir=In|Protocol=1|ICMP4=8:*|Name=File and Printer Sharing"
    " (Echo Request - ICMPv4-In)|"
)


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


def hive(path: Path, keys: Keys) -> Path:
    """A hive at ``path``: the minimal one, with ``keys`` added (parents first)."""
    shutil.copyfile(MINIMAL_HIVE, path)
    made: set[str] = set()
    commands: list[str] = []
    for key, values in keys.items():
        parts = key.split("\\")
        for depth in range(len(parts)):
            sub = "\\".join(parts[: depth + 1])
            if sub.lower() in made:
                continue
            parent = "\\".join(parts[:depth])
            commands += [f"cd \\{parent}" if parent else "cd \\ ", f"add {parts[depth]}"]
            made.add(sub.lower())
        if values:
            setval = [f"cd \\{key}", f"setval {len(values)}"]
            for name, value in values.items():
                setval += [name or "@", value]
            commands += setval
    hivexsh(path, [*commands, "commit"])
    return path


def hivexsh(path: Path, commands: list[str]) -> None:
    """hivexsh -w running ``commands`` on ``path`` (lines of at most 8191 bytes)."""
    done = subprocess.run(
        ["hivexsh", "-w", str(path)],
        input="\n".join(commands) + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def system_keys() -> dict[str, dict[str, str]]:
    """A SYSTEM hive's keys as a Windows install has them, before preparation."""
    cs = "ControlSet001"
    return {
        "Select": {"Current": "dword:1", "Default": "dword:1", "LastKnownGood": "dword:2"},
        f"{cs}\\Control\\ComputerName\\ComputerName": {"ComputerName": "string:WIN-RESTORED"},
        f"{cs}\\Control\\Terminal Server": {
            "fDenyTSConnections": "dword:1",
            "ProductVersion": "string:5.1",
            # A multi-string, kept byte for byte: CertPropSvc, SessionEnv.
            "RCDependentServices": "hex:7:"
            + ",".join(f"{b:02x}" for b in "CertPropSvc\0SessionEnv\0\0".encode("utf-16-le")),
        },
        f"{cs}\\Control\\Terminal Server\\WinStations\\RDP-Tcp": {
            "PortNumber": "dword:3390",
            "WdName": "string:Microsoft RDP 8.0",
            "SecurityLayer": "dword:2",
            "UserAuthentication": "dword:1",
        },
        f"{cs}\\Control\\TimeZoneInformation": {
            "Bias": "dword:0xffffffc4",
            # Not ASCII: re-encoded exactly when the key is written again.
            "StandardName": "hex:1:"
            + ",".join(f"{b:02x}" for b in "Mitteleuropäische Zeit\0".encode("utf-16-le")),
            "TimeZoneKeyName": "string:W. Europe Standard Time",
        },
        f"{cs}\\Services\\partmgr\\Parameters": {"SanPolicy": "dword:3"},
        f"{cs}\\Services\\TermService": {
            "Start": "dword:4",
            "ImagePath": "expandstring:%SystemRoot%\\System32\\svchost.exe -k NetworkService",
        },
        f"{cs}\\Services\\BFE": {"Start": "dword:2"},
        f"{cs}\\Services\\Dhcp": {"Start": "dword:2"},
        f"{cs}\\Services\\IKEEXT": {"Start": "dword:3"},
        f"{cs}\\Services\\mpssvc": {"Start": "dword:4"},
        f"{cs}\\Services\\W32Time": {"Start": "dword:3"},
        RULES: {
            "RemoteDesktop-UserMode-In-TCP": f"string:{RDP_TCP_OFF}",
            "FPS-ICMP4-ERQ-In": f"string:{OTHER_RULE}",
        },
    }


def software_keys() -> dict[str, dict[str, str]]:
    return {
        "Microsoft\\Windows NT\\CurrentVersion": {
            "ProductName": "string:Windows Server 2019 Datacenter",
            "CurrentBuild": "string:17763",
            "SystemRoot": "string:C:\\Windows",
        },
        "Policies\\Microsoft\\Windows NT\\Terminal Services": {"fDenyTSConnections": "dword:1"},
    }


def bcd_keys() -> dict[str, dict[str, str]]:
    return {
        f"Objects\\{BOOTMGR}\\Elements\\23000003": {"Element": f"string:{LOADER}"},
        f"Objects\\{LOADER}\\Elements\\12000004": {"Element": "string:Windows Server"},
        f"Objects\\{LOADER}\\Elements\\16000009": {"Element": "hex:3:01"},
    }


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
