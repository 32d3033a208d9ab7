"""The emulator's own look at the disks a guest script left behind: which of them is now
an OS disk with a working guest agent, by Azure's rules, never by what the script said.

Run inside a guest sandbox (``python -m azrestore.emulator.guest.inspect``): it mounts
every file system of the sandbox's data disks read-only (LVM volumes activated first; where
the kernel has no device-mapper, a linear LV through a loop device over its byte range),
judges it, and prints one JSON object ``{"LUN": {"ready": bool, "os": ..., "evidence":
[...], "problems": [...]}}``. Standard library only; blocking (it is its own process).

Linux: a root file system (ext2/3/4, xfs, btrfs, also on LVM) with an os-release file,
whose systemd enables sshd and a guest agent (waagent/walinuxagent or cloud-init linked in
a ``*.wants`` directory, or azrestore's first-boot agent installer). Windows (NTFS, read
with ntfs-3g and hivexget): the SYSTEM hive's current control set allows RDP
(``fDenyTSConnections`` = 0) and has the WindowsAzureGuestAgent service, or
``ProgramData/AzRestore/FirstBoot/install-agent.cmd`` is there and a local Group Policy
machine startup script runs it (in the SOFTWARE hive's Group Policy scripts cache or in
scripts.ini).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

_AZURE: Final = Path("/dev/disk/azure/scsi1")
_LINUX_FS: Final = {
    "ext2": "ro,noload",
    "ext3": "ro,noload",
    "ext4": "ro,noload",
    "xfs": "ro,norecovery",
    "btrfs": "ro,nologreplay",
}
_AGENTS: Final = ("walinuxagent.service", "waagent.service")
_CLOUD_INIT: Final = ("cloud-init.service", "cloud-init-local.service")
_HOOK: Final = "azrestore-install-agent.service"
_HOOK_PROGRAM: Final = "/usr/local/sbin/azrestore-install-agent"
_SSHD: Final = ("ssh.service", "sshd.service", "ssh.socket", "sshd.socket")
_INSTALLER: Final = "ProgramData\\AzRestore\\FirstBoot\\install-agent.cmd"
_GP: Final = "\\Microsoft\\Windows\\CurrentVersion\\Group Policy"
_STARTUP_KEYS: Final = (
    f"{_GP}\\Scripts\\Startup\\0\\0",
    f"{_GP}\\State\\Machine\\Scripts\\Startup\\0\\0",
)
_UNIT_DIRS: Final = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


@dataclass
class Verdict:
    """What was found on one disk."""

    ready: bool = False
    os: str | None = None
    evidence: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False)


def inside(root: Path, path: str) -> Path:
    """Where ``path`` of the system at ``root`` is, following its links inside ``root``."""
    parts = [p for p in path.split("/") if p]
    out: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        candidate = root.joinpath(*out, part)
        if candidate.is_symlink() and hops < 40:
            hops += 1
            target = os.readlink(candidate)
            if target.startswith("/"):
                out = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        out.append(part)
    return root.joinpath(*out)


def _enabled(root: Path, names: tuple[str, ...]) -> list[str]:
    """``wants-dir/unit`` for each unit of ``names`` linked in a ``*.wants`` directory
    whose link leads to a unit file that exists."""
    found = []
    for unit_dir in _UNIT_DIRS:
        base = inside(root, unit_dir)
        if not base.is_dir():
            continue
        for wants in sorted(base.glob("*.wants")):
            for name in names:
                link = wants / name
                if not (link.is_symlink() or link.exists()):
                    continue
                if link.is_symlink():
                    target = os.readlink(link)
                    if not target.startswith("/"):
                        target = f"{unit_dir}/{wants.name}/{target}"
                    if not inside(root, target).is_file():
                        continue
                found.append(f"{unit_dir}/{wants.name}/{name}")
    return found


def judge_linux(root: Path, verdict: Verdict) -> None:
    """Judge a mounted Linux root file system."""
    release = next(
        (p for p in ("/etc/os-release", "/usr/lib/os-release") if inside(root, p).is_file()),
        None,
    )
    if release is None:
        verdict.problems.append("no os-release")
        return
    text = inside(root, release).read_text(errors="replace")
    distro = re.search(r"^ID=\"?([^\"\n]*)", text, re.M)
    verdict.os = "Linux"
    verdict.evidence.append(f"os-release: {distro.group(1) if distro else 'unknown'}")
    sshd = _enabled(root, _SSHD)
    agent = _enabled(root, _AGENTS) + _enabled(root, _CLOUD_INIT)
    hook = _enabled(root, (_HOOK,))
    if hook and inside(root, _HOOK_PROGRAM).is_file():
        agent += [f"{hook[0]} (first-boot agent installer)"]
    verdict.evidence += [f"sshd: {u}" for u in sshd] + [f"agent: {u}" for u in agent]
    if not sshd:
        verdict.problems.append("sshd is not enabled")
    if not agent:
        verdict.problems.append("no guest agent (waagent or cloud-init) is enabled")
    verdict.ready = bool(sshd and agent)


def _find(root: Path, *names: str) -> Path | None:
    """``root/names...`` matched case-insensitively (NTFS names)."""
    here = root
    for name in names:
        if not here.is_dir():
            return None
        match = next((c for c in here.iterdir() if c.name.lower() == name.lower()), None)
        if match is None:
            return None
        here = match
    return here


def _hive_value(hive: Path, key: str, name: str) -> str | None:
    done = _run("hivexget", str(hive), key, name)
    return done.stdout.strip() if done.returncode == 0 else None


def _startup_script(root: Path) -> str | None:
    """What runs the first-boot installer at boot: a machine startup script of the local
    Group Policy (its registry cache in the SOFTWARE hive, or its scripts.ini); None."""
    wanted = f"\\{_INSTALLER}".lower()
    software = _find(root, "Windows", "System32", "config", "SOFTWARE")
    for key in _STARTUP_KEYS:
        script = _hive_value(software, key, "Script") if software is not None else None
        if script is not None and script.lower().endswith(wanted):
            return "a Group Policy startup script in the SOFTWARE hive"
    ini = _find(root, "Windows", "System32", "GroupPolicy", "Machine", "Scripts", "scripts.ini")
    if ini is not None and ini.is_file():
        data = ini.read_bytes()
        text = data.decode(
            "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8", "replace"
        )
        for line in text.splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower().endswith("cmdline") and value.strip().lower().endswith(wanted):
                return "a Group Policy startup script in scripts.ini"
    return None


def judge_windows(root: Path, verdict: Verdict) -> None:
    """Judge a mounted NTFS volume holding Windows."""
    hive = _find(root, "Windows", "System32", "config", "SYSTEM")
    if hive is None:
        verdict.problems.append("no Windows SYSTEM hive")
        return
    verdict.os = "Windows"
    current = _hive_value(hive, "\\Select", "Current")
    if current is None or not re.fullmatch(r"(0x)?[0-9a-fA-F]+", current.split(":")[-1]):
        verdict.problems.append(f"SYSTEM hive: no Select\\Current ({current})")
        return
    raw = current.split(":")[-1]
    control_set = f"ControlSet{int(raw, 16 if raw.startswith('0x') or ':' in current else 10):03d}"
    verdict.evidence.append(f"SYSTEM: current control set {control_set}")
    deny = _hive_value(hive, f"\\{control_set}\\Control\\Terminal Server", "fDenyTSConnections")
    rdp = deny is not None and deny.split(":")[-1].strip() in ("0", "0x0", "00000000")
    if rdp:
        verdict.evidence.append("RDP: fDenyTSConnections = 0")
    else:
        verdict.problems.append(f"RDP is not allowed (fDenyTSConnections = {deny})")
    agent_key = _run("hivexget", str(hive), f"\\{control_set}\\Services\\WindowsAzureGuestAgent")
    agent = agent_key.returncode == 0
    if agent:
        verdict.evidence.append("agent: service WindowsAzureGuestAgent")
    installer = _find(root, *_INSTALLER.split("\\"))
    if not agent and installer is not None and installer.is_file():
        runs_it = _startup_script(root)
        if runs_it is not None:
            verdict.evidence.append(f"agent: first-boot installer install-agent.cmd ({runs_it})")
            agent = True
        else:
            verdict.problems.append("a first-boot agent installer no startup script runs")
    if not agent:
        verdict.problems.append("no guest agent service and no first-boot agent installer")
    verdict.ready = rdp and agent


@dataclass(frozen=True)
class _Volume:
    """Somewhere a file system may be: a device, or (an LV mapped without device-mapper)
    ``size`` bytes of it from ``offset``."""

    name: str
    device: str
    offset: int | None = None
    size: int | None = None

    def range_args(self, blkid: bool) -> list[str]:
        if self.offset is None:
            return []
        if blkid:
            return ["-O", str(self.offset), "-S", str(self.size)]
        return [f"offset={self.offset},sizelimit={self.size}"]


def _blkid_type(volume: _Volume) -> str:
    command = ["blkid", "-p", *volume.range_args(True), "-s", "TYPE", "-o", "value"]
    return _run(*command, volume.device).stdout.strip()


def _device_mapper() -> bool:
    return Path("/dev/mapper/control").exists() and _run("dmsetup", "version").returncode == 0


def _lvm(devices: list[str], active: bool, *command: str) -> subprocess.CompletedProcess[str]:
    """An LVM command that sees ``devices`` alone (another disk's VG of the same name, or a
    clone's PVs, are not this disk's); without device-mapper, one that never activates."""
    accept = "".join(f'"a|^{device}$|",' for device in devices)
    config = (
        f'devices{{filter=[{accept}"r|.*|"] global_filter=[{accept}"r|.*|"] '
        "use_devicesfile=0 obtain_device_list_from_udev=0}"
    )
    if not active:
        config += " global{activation=0}"
    return _run(*command, "--config", config)


def _mapped(devices: list[str], uuid: str) -> list[_Volume]:
    """The VG's LVs that are one linear segment, as byte ranges of their PVs."""
    found = []
    lvs = _lvm(
        devices,
        False,
        *("lvs", "--noheadings", "--nosuffix", "--units", "b", "--select", f"vg_uuid={uuid}"),
        *("-o", "lv_path,seg_count,segtype,lv_attr,devices,lv_size"),
    ).stdout
    for line in lvs.splitlines():
        fields = line.split()
        if len(fields) != 6 or fields[1:3] != ["1", "linear"] or fields[3][0] != "-":
            continue
        device, _, first = fields[4].partition("(")
        pvs = _lvm(
            devices,
            False,
            *("pvs", "--noheadings", "--nosuffix", "--units", "b"),
            *("-o", "pe_start,vg_extent_size", device),
        ).stdout.split()
        if len(pvs) != 2 or not first.rstrip(")").isdigit():
            continue
        offset = int(pvs[0]) + int(first.rstrip(")")) * int(pvs[1])
        found.append(_Volume(fields[0], device, offset, int(fields[5])))
    return found


def _volumes(lun_link: Path) -> tuple[list[_Volume], list[tuple[list[str], str]]]:
    """The disk's places to look at (itself, partitions, LVM volumes: activated where
    device-mapper is, else mapped) and the VGs activated."""
    devices = [str(lun_link.resolve())]
    devices += [str(p.resolve()) for p in sorted(_AZURE.glob(f"{lun_link.name}-part*"))]
    volumes = [_Volume(device, device) for device in devices]
    active = _device_mapper()
    groups: list[tuple[list[str], str]] = []
    seen: set[str] = set()
    for volume in list(volumes):
        if _blkid_type(volume) != "LVM2_member":
            continue
        pvs = _lvm(devices, active, "pvs", "--noheadings", "-o", "vg_uuid", volume.device)
        uuid = pvs.stdout.strip()
        if not uuid or uuid in seen:
            continue
        seen.add(uuid)
        if not active:
            volumes += _mapped(devices, uuid)
            continue
        select = ("--select", f"vg_uuid={uuid}")
        if _lvm(devices, True, "vgchange", "-ay", *select).returncode != 0:
            continue
        groups.append((devices, uuid))
        lvs = _lvm(devices, True, "lvs", "--noheadings", "-o", "lv_path", *select).stdout
        volumes += [_Volume(lv, lv) for lv in lvs.split()]
    return volumes, groups


def _loop_node() -> str:
    """The next free loop device, with a node in this /dev (which has no devtmpfs)."""
    name = _run("losetup", "-f").stdout.strip()
    path = Path(name)
    if name and not path.exists():
        major, minor = (Path("/sys/block") / path.name / "dev").read_text().split(":")
        os.mknod(path, 0o600 | stat.S_IFBLK, os.makedev(int(major), int(minor)))
    return name


def _mount(volume: _Volume, kind: str, where: str) -> subprocess.CompletedProcess[str]:
    if kind == "ntfs":
        return _run("ntfs-3g", "-o", "ro", volume.device, where)
    options = _LINUX_FS[kind]
    if volume.offset is None:
        return _run("mount", "-t", kind, "-o", options, volume.device, where)
    for _ in range(5):  # another sandbox may take the free loop device first
        loop = f"loop={_loop_node()},{volume.range_args(False)[0]}"
        done = _run("mount", "-t", kind, "-o", f"{options},{loop}", volume.device, where)
        if done.returncode == 0:
            break
    return done


def judge_disk(lun_link: Path) -> Verdict:
    """Judge one data disk of the sandbox."""
    verdict = Verdict()
    volumes, groups = _volumes(lun_link)
    try:
        for volume in volumes:
            kind = _blkid_type(volume)
            if kind not in _LINUX_FS and (kind != "ntfs" or volume.offset is not None):
                continue
            with tempfile.TemporaryDirectory(prefix="azrestore-inspect.") as where:
                mount = _mount(volume, kind, where)
                if mount.returncode != 0:
                    verdict.problems.append(f"cannot mount {volume.name} ({kind})")
                    continue
                try:
                    found = Verdict()
                    if kind == "ntfs":
                        judge_windows(Path(where), found)
                    else:
                        judge_linux(Path(where), found)
                finally:
                    _run("umount", where)
            if found.os is not None:
                found.evidence.insert(0, f"{found.os} on {volume.name} ({kind})")
                return found
    finally:
        for devices, uuid in groups:
            _lvm(devices, True, "vgchange", "-an", "--select", f"vg_uuid={uuid}")
    verdict.problems.append("no operating system found")
    return verdict


def main() -> None:
    """Judge every data disk of the sandbox; print the verdicts as JSON."""
    verdicts = {}
    for link in sorted(_AZURE.glob("lun*")):
        if "-part" in link.name:
            continue
        verdict = judge_disk(link)
        verdicts[link.name.removeprefix("lun")] = {
            "ready": verdict.ready,
            "os": verdict.os,
            "evidence": verdict.evidence,
            "problems": verdict.problems,
        }
    json.dump(verdicts, sys.stdout)


if __name__ == "__main__":
    main()
