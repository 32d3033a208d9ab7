"""Real Linux disk images for the tests whose scripts run for real in the emulator's
guest sandbox (a GPT disk with an ESP and an ext4 root made by ``mkfs.ext4 -d`` from a
fake distribution tree, or its root on an LVM logical volume), and reading a restored one
back with debugfs.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from azrestore.cli.demo.winhives import hive
from azrestore.emulator.guest.availability import sandbox_unavailable
from azrestore.formats.sizes import MiB
from tests.support.disks import mkfs, new_disk, put, run, sfdisk
from tests.support.restore import ESP, LINUX_FS
from tests.support.tools import require, unavailable

LVM_TYPE = "E6D6D379-F507-44C2-A23C-238F2A3DF928"


def require_sandbox() -> None:
    """Skip (in CI, fail) where guest scripts cannot run for real, saying why."""
    require("unshare", "losetup", "partx", "mkfs.ext4", "debugfs", "sfdisk")
    reason = sandbox_unavailable()
    if reason is not None:
        unavailable(reason)


def distro_tree(root: Path, *, agent: bool) -> Path:
    """A Debian-like root file system: sshd (not enabled), an iptables policy that drops,
    GRUB defaults, fstab by /dev/sda names, persistent net rules, initramfs-tools; with
    waagent installed when ``agent``."""
    files = {
        "etc/os-release": 'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\n',
        "usr/lib/systemd/system/ssh.service": "[Unit]\nDescription=OpenBSD Secure Shell\n",
        "usr/sbin/sshd": "",
        "etc/ssh/sshd_config": "#Port 22\nPermitRootLogin no\n",
        "etc/default/grub": 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="quiet"\n',
        "etc/fstab": (
            "/dev/sda2 / ext4 errors=remount-ro 0 1\n/dev/sda1 /boot/efi vfat umask=0077 0 1\n"
        ),
        "etc/udev/rules.d/70-persistent-net.rules": (
            'SUBSYSTEM=="net", ATTR{address}=="52:54:00:12:34:56", NAME="eth0"\n'
        ),
        "etc/initramfs-tools/modules": "# modules for the initramfs\n",
        "etc/iptables/rules.v4": (
            "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -i lo -j ACCEPT\nCOMMIT\n"
        ),
        "etc/network/interfaces": "auto lo\niface lo inet loopback\n",
    }
    if agent:
        files["usr/sbin/waagent"] = "#!/bin/sh\n"
        files["usr/lib/systemd/system/walinuxagent.service"] = "[Unit]\nDescription=Azure agent\n"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "boot/efi").mkdir(parents=True, exist_ok=True)
    (root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True, exist_ok=True)
    return root


def linux_disk(work: Path, name: str, *, agent: bool, size: int = 64 * MiB) -> Path:
    """A GPT disk: ESP (16 MiB, vfat) and an ext4 root made from :func:`distro_tree`."""
    tree = distro_tree(work / f"{name}.tree", agent=agent)
    disk = new_disk(work, size, name)
    sfdisk(disk, f"label: gpt\nstart=2048, size=16M, type={ESP}\ntype={LINUX_FS}\n")
    put(disk, MiB, mkfs(work, "vfat", 16 * MiB))
    root = work / f"{name}.root.fs"
    with root.open("wb") as file:
        file.truncate(size - 18 * MiB)
    run("mkfs.ext4", "-q", "-F", "-d", str(tree), str(root))
    put(disk, 17 * MiB, root)
    root.unlink()
    return disk


def noise_disk(work: Path, name: str, *, size: int = 48 * MiB) -> Path:
    """A GPT disk (an ESP, then a Linux partition) whose Linux partition holds random
    bytes: no file system a script can recognise."""
    disk = new_disk(work, size, name)
    sfdisk(disk, f"label: gpt\nstart=2048, size=16M, type={ESP}\ntype={LINUX_FS}\n")
    put(disk, MiB, mkfs(work, "vfat", 16 * MiB))
    put(disk, 17 * MiB, random.Random(7).randbytes(size - 18 * MiB))
    return disk


@dataclass(frozen=True)
class LvmDisk:
    """A disk whose root file system is on LVM: the image, and where the root LV's bytes
    lie in it (as LVM's own tools reported when they made it)."""

    path: Path
    lv_offset: int
    lv_size: int


def _lvm(work: Path, device: str, *command: str) -> str:
    """An LVM command that sees ``device`` alone and never activates, with its own
    configuration and metadata backups in ``work``."""
    config = work / "lvm"
    if not (config / "lvm.conf").exists():
        config.mkdir(exist_ok=True)
        (config / "lvm.conf").write_text(
            f'devices {{ filter = [ "a|^{device}$|", "r|.*|" ] '
            f'global_filter = [ "a|^{device}$|", "r|.*|" ] use_devicesfile = 0 '
            "obtain_device_list_from_udev = 0 }\nglobal { activation = 0 }\n"
            "backup { backup = 0 archive = 0 }\n"
        )
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LVM_SYSTEM_DIR": str(config), "LVM_SUPPRESS_FD_WARNINGS": "1"},
    )
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout


def lvm_disk(
    work: Path, name: str, *, vg: str = "azrvg", split: bool = False, size: int = 96 * MiB
) -> LvmDisk:
    """A GPT disk whose second partition is an LVM PV (VG ``vg``, LV ``root``: one linear
    segment, or two apart when ``split``) holding an ext4 root made from
    :func:`distro_tree` with an agent (in the first segment when ``split``). Made without
    device-mapper: the PV's metadata by pvcreate/vgcreate/lvcreate (never activated) on a
    loop device over the partition, the file system by mkfs.ext4 into the byte range
    ``lvs`` and ``pvs`` report."""
    require("pvcreate", "vgcreate", "lvcreate", "lvextend", "lvs", "pvs", "losetup")
    tree = distro_tree(work / f"{name}.tree", agent=True)
    (tree / "etc/fstab").write_text(
        f"/dev/mapper/{vg.replace('-', '--')}-root / ext4 defaults 0 1\n"
    )
    disk = new_disk(work, size, name)
    sfdisk(disk, f"label: gpt\nstart=2048, size=16M, type={ESP}\ntype={LVM_TYPE}\n")
    start, length = 17 * MiB, size - 18 * MiB
    command = ("losetup", "--find", "--show", "--offset", str(start), "--sizelimit", str(length))
    loop = run(*command, str(disk)).strip()
    config = work / f"{name}.lvm"
    config.mkdir()
    new_lv = ("lvcreate", "-q", "--activate", "n", "--zero", "n")
    report = ("--noheadings", "--nosuffix", "--units", "b")
    try:
        _lvm(config, loop, "pvcreate", "-q", loop)
        _lvm(config, loop, "vgcreate", "-q", vg, loop)
        if split:
            _lvm(config, loop, *new_lv, "-l", "6", "-n", "root", vg)
            _lvm(config, loop, *new_lv, "-l", "1", "-n", "gap", vg)
            _lvm(config, loop, "lvextend", "-q", "-l", "+6", f"{vg}/root")
        else:
            _lvm(config, loop, *new_lv, "-l", "100%FREE", "-n", "root", vg)
        segments = _lvm(
            config, loop, "lvs", "--segments", *report, "-o", "seg_pe_ranges,seg_size", f"{vg}/root"
        ).split()
        pvs = _lvm(config, loop, "pvs", *report, "-o", "pe_start,vg_extent_size", loop).split()
    finally:
        subprocess.run(["losetup", "--detach", loop], capture_output=True, check=False)
    assert len(segments) == (4 if split else 2), segments
    first = int(segments[0].rsplit(":", 1)[1].split("-")[0])
    offset, lv_size = start + int(pvs[0]) + first * int(pvs[1]), int(segments[1])
    root = work / f"{name}.root.fs"
    with root.open("wb") as file:
        file.truncate(lv_size)
    run("mkfs.ext4", "-q", "-F", "-d", str(tree), str(root))
    put(disk, offset, root)
    root.unlink()
    return LvmDisk(disk, offset, lv_size)


def extract(image: Path, offset: int, size: int, into: Path) -> Path:
    """``size`` bytes of ``image`` from ``offset`` copied into the file ``into``."""
    with image.open("rb") as source, into.open("wb") as target:
        source.seek(offset)
        target.write(source.read(size))
    return into


def partition(image: Path, number: int, into: Path) -> Path:
    """Partition ``number`` of the raw disk ``image`` copied into the file ``into``."""
    table = json.loads(run("sfdisk", "--json", str(image)))["partitiontable"]
    part = table["partitions"][number - 1]
    with image.open("rb") as source, into.open("wb") as target:
        source.seek(part["start"] * 512)
        target.write(source.read(part["size"] * 512))
    return into


def debugfs(fs: Path, request: str) -> str:
    """What ``debugfs -R request`` says of the ext4 image ``fs`` (read-only)."""
    done = subprocess.run(
        ["debugfs", "-R", request, str(fs)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def exists(fs: Path, path: str) -> bool:
    """Whether ``path`` exists in the ext4 image ``fs`` (by debugfs)."""
    done = subprocess.run(
        ["debugfs", "-R", f"stat {path}", str(fs)], capture_output=True, text=True, check=False
    )
    return "File not found" not in done.stderr + done.stdout


def windows_tree(
    root: Path, *, deny: int, agent: bool, installer: bool, startup: str = "registry"
) -> Path:
    """A Windows volume's files as the inspection reads them: a SYSTEM hive whose current
    control set (ControlSet002) has ``fDenyTSConnections`` = ``deny`` and, when
    ``agent``, the WindowsAzureGuestAgent service; a first-boot installer when
    ``installer``, run at boot by a local Group Policy startup script (``startup``: in the
    SOFTWARE hive's ``registry`` cache, in ``scripts.ini``, or ``none``)."""
    config = root / "Windows/System32/config"
    config.mkdir(parents=True)
    keys: dict[str, dict[str, str]] = {
        "Select": {"Current": "dword:00000002"},
        "ControlSet001\\Control\\Terminal Server": {"fDenyTSConnections": "dword:00000000"},
        "ControlSet002\\Control\\Terminal Server": {"fDenyTSConnections": f"dword:{deny:08x}"},
    }
    if agent:
        keys["ControlSet002\\Services\\WindowsAzureGuestAgent"] = {"Start": "dword:00000002"}
    hive(config / "SYSTEM", keys)
    if installer:
        (root / "ProgramData/AzRestore/FirstBoot").mkdir(parents=True)
        (root / "ProgramData/AzRestore/FirstBoot/install-agent.cmd").write_text("rem\r\n")
    cmdline = "C:\\ProgramData\\AzRestore\\FirstBoot\\install-agent.cmd"
    if startup == "registry":
        startup_key = "Microsoft\\Windows\\CurrentVersion\\Group Policy\\Scripts\\Startup\\0\\0"
        hive(config / "SOFTWARE", {startup_key: {"Script": f"string:{cmdline}"}})
    elif startup == "scripts.ini":
        scripts = root / "Windows/System32/GroupPolicy/Machine/Scripts"
        scripts.mkdir(parents=True)
        text = f"\r\n[Startup]\r\n0CmdLine={cmdline}\r\n0Parameters=\r\n"
        (scripts / "scripts.ini").write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    return root


def ntfs_disk(work: Path, name: str, files: Path, *, size: int = 48 * MiB) -> Path:
    """An MBR disk whose one NTFS partition (made by mkntfs) holds the tree ``files``
    (copied in through an ntfs-3g mount)."""
    require("mkntfs", "ntfs-3g", "sfdisk")
    disk = new_disk(work, size, name)
    sfdisk(disk, "label: dos\nstart=2048, type=7, bootable\n")
    volume = mkfs(work, "ntfs", size - MiB)
    where = work / f"{name}.mnt"
    where.mkdir()
    run("ntfs-3g", str(volume), str(where))
    try:
        shutil.copytree(files, where, dirs_exist_ok=True)
    finally:
        run("umount", str(where))
    put(disk, MiB, volume)
    volume.unlink()
    return disk
