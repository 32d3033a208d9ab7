"""prepare-windows-offline.sh, run for real in --device mode on loop devices holding
Windows-shaped disks (MBR and GPT, NTFS made by mkntfs, hives made with hivexsh), and its
work read back with independent tools: ntfs-3g (read-only) and hivexget, never azrestore.

No real Windows here: what Windows makes of these changes at boot is not tested.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from azrestore.formats.sizes import MiB
from azrestore.restore.scripts import (
    MAX_SCRIPT_BYTES,
    RESULT_PREFIX,
    WINDOWS_OFFLINE_SCRIPT,
    parse_result,
    script_text,
    windows_offline_command,
)
from tests.support.disks import mkfs, new_disk, put, sfdisk
from tests.support.tools import needs, require, unavailable
from tests.support.windisk import (
    LOADER,
    OTHER_RULE,
    RULES,
    TOOLS,
    attached,
    fill,
    gpt_disk,
    hive,
    hivexget,
    mbr_disk,
    ntfs_acl,
    system_keys,
    vfat_mounts,
    windows_files,
)

CMDLINE = "C:\\ProgramData\\AzRestore\\FirstBoot\\install-agent.cmd"
STARTUP = "Microsoft\\Windows\\CurrentVersion\\Group Policy\\Scripts\\Startup\\0"
STATE = "Microsoft\\Windows\\CurrentVersion\\Group Policy\\State\\Machine\\Scripts\\Startup\\0"


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The script exactly as Run Command gets it (the command's lines, joined)."""
    path = tmp_path_factory.mktemp("script") / WINDOWS_OFFLINE_SCRIPT
    path.write_text(windows_offline_command(0).text)
    return path


@pytest.fixture
def tools() -> None:
    if os.geteuid() != 0:
        unavailable("needs root (loop devices, mounts)")
    require(*TOOLS)


def run(
    script: Path, *args: str, env: Mapping[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """The script run; its result line checked: last, valid JSON, under 3800 bytes."""
    done = subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
        env={**os.environ, **(env or {})},
    )
    last = done.stdout.splitlines()[-1] if done.stdout else ""
    assert last.startswith(RESULT_PREFIX), done.stdout + done.stderr
    assert len(last.encode()) - len(RESULT_PREFIX) <= 3800
    json.loads(last.removeprefix(RESULT_PREFIX))
    result = parse_result(done.stdout)
    assert result is not None
    return done, result


def cmdline_of(path: Path) -> bytes:
    """A process's command line (empty if it has gone meanwhile)."""
    try:
        return path.read_bytes()
    except OSError:
        return b""


def assert_nothing_left(device: str) -> None:
    """Nothing of ``device`` mounted, no ntfs-3g of it running, no mount point left."""
    assert device not in Path("/proc/mounts").read_text()
    for _ in range(50):  # a FUSE daemon may take a moment to exit after its unmount
        running = [
            cmdline
            for cmdline in map(cmdline_of, Path("/proc").glob("[0-9]*/cmdline"))
            if cmdline.startswith(b"ntfs-3g\0") and device.encode() in cmdline
        ]
        if not running:
            break
        time.sleep(0.1)
    assert not running, running
    # Mount points are named after the partitions (others' runs may have theirs meanwhile).
    name = Path(device).name
    for top in ("/run", "/tmp"):
        assert not list(Path(top).glob(f"azrestore-win.*/{name}*")), top


#: The ACL of the first-boot files: what Windows gives System32, not ntfs-3g's default.
FIRST_BOOT_ACL = [
    "owner S-1-5-32-544",  # Administrators
    "group S-1-5-18",
    "allow 0x3 0x1f01ff S-1-5-18",  # SYSTEM, full control, inherited by what is inside
    "allow 0x3 0x1f01ff S-1-5-32-544",
    "allow 0x3 0x1200a9 S-1-5-32-545",  # Users, read and execute
]


def volume_files(device: str, work: Path) -> dict[str, bytes]:
    """Every file of every NTFS/FAT partition of ``device``, read through a read-only mount;
    the first-boot files' and folders' ACLs checked on the way."""
    found: dict[str, bytes] = {}
    for part in sorted(Path("/dev").glob(Path(device).name + "p*")):
        kind = subprocess.run(
            ["blkid", "-p", "-s", "TYPE", "-o", "value", str(part)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if kind not in ("ntfs", "vfat") or (kind == "vfat" and not vfat_mounts()):
            continue
        where = work / f"ro-{part.name}"
        where.mkdir(exist_ok=True)
        command = ["ntfs-3g", "-o", "ro"] if kind == "ntfs" else ["mount", "-o", "ro"]
        subprocess.run([*command, str(part), str(where)], check=True, capture_output=True)
        try:
            for path in sorted(where.rglob("*")):
                rel = str(path.relative_to(where)).lower()
                if kind == "ntfs" and (
                    rel.startswith("programdata/azrestore") or "system32/grouppolicy" in rel
                ):
                    assert ntfs_acl(path) == FIRST_BOOT_ACL, rel
                if path.is_file():
                    found[f"{part.name}/{path.relative_to(where)}"] = path.read_bytes()
        finally:
            subprocess.run(["umount", str(where)], check=True)
    return found


def copied_out(files: dict[str, bytes], work: Path, name: str) -> Path:
    """The one file of the volumes whose path ends with ``name`` (any case), in a file."""
    hits = [key for key in files if key.lower().endswith(name.lower())]
    assert len(hits) == 1, (name, sorted(files))
    path = work / name.replace("/", "_")
    path.write_bytes(files[hits[0]])
    return path


def assert_prepared(files: dict[str, bytes], work: Path, *, bcd: bool = True) -> None:
    """The values the preparation sets, read with hivexget from the hives copied out."""
    system = copied_out(files, work, "system32/config/SYSTEM")
    software = copied_out(files, work, "system32/config/SOFTWARE")
    cs = "ControlSet001"
    ts = f"{cs}\\Control\\Terminal Server"
    rdp = f"{ts}\\WinStations\\RDP-Tcp"
    expected = {
        (ts, "fDenyTSConnections"): "0",
        (ts, "KeepAliveEnable"): "1",
        (rdp, "PortNumber"): "3389",
        (rdp, "SecurityLayer"): "1",
        (rdp, "UserAuthentication"): "1",
        (rdp, "fAllowSecProtocolNegotiation"): "1",
        (rdp, "MaxInstanceCount"): "-1",  # 0xffffffff, printed signed
        (f"{cs}\\Services\\partmgr\\Parameters", "SanPolicy"): "1",
        (f"{cs}\\Control\\TimeZoneInformation", "RealTimeIsUniversal"): "1",
        (f"{cs}\\Services\\TermService", "Start"): "3",
        (f"{cs}\\Services\\IKEEXT", "Start"): "2",
        (f"{cs}\\Services\\mpssvc", "Start"): "2",
        (f"{cs}\\Services\\W32Time", "Start"): "2",
        (f"{cs}\\Services\\BFE", "Start"): "2",
    }
    for (key, name), value in expected.items():
        assert hivexget(system, key, name) == value, (key, name)
    # What was there and is not the preparation's business, kept as it was.
    assert hivexget(system, ts, "ProductVersion") == "5.1"
    assert hivexget(system, rdp, "WdName") == "Microsoft RDP 8.0"
    assert hivexget(system, f"{cs}\\Control\\TimeZoneInformation", "StandardName") == (
        "Mitteleuropäische Zeit"
    )
    assert '"RCDependentServices"=hex(7):43,00,65,00' in hivexget(system, ts)
    assert hivexget(system, f"{cs}\\Services\\TermService", "ImagePath").endswith(
        "-k NetworkService"
    )
    # Firewall: the RDP rule active, the missing ones added active, the others untouched.
    rules = {
        name: hivexget(system, RULES, name)
        for name in ("RemoteDesktop-UserMode-In-TCP", "RemoteDesktop-UserMode-In-UDP")
    }
    rules["WINRM-HTTP-In-TCP"] = hivexget(system, RULES, "WINRM-HTTP-In-TCP")
    for name, rule in rules.items():
        assert "|Active=TRUE|" in rule and "|Active=FALSE|" not in rule, name
        assert "|Action=Allow|" in rule and "|Dir=In|" in rule
    assert "|LPort=3389|" in rules["RemoteDesktop-UserMode-In-UDP"]
    assert "|LPort=5985|" in rules["WINRM-HTTP-In-TCP"]
    assert hivexget(system, RULES, "FPS-ICMP4-ERQ-In") == OTHER_RULE
    # SOFTWARE: the RDP policy lifted; the startup script registered.
    assert (
        hivexget(
            software, "Policies\\Microsoft\\Windows NT\\Terminal Services", "fDenyTSConnections"
        )
        == "0"
    )
    for key in (STARTUP, STATE):
        assert hivexget(software, key, "GPO-ID") == "LocalGPO"
        assert (
            hivexget(software, key, "FileSysPath") == "C:\\Windows\\System32\\GroupPolicy\\Machine"
        )
        assert hivexget(software, f"{key}\\0", "Script") == CMDLINE
        assert hivexget(software, f"{key}\\0", "IsPowershell") == "0"
    # The installer and the local Group Policy files.
    installer = files[
        next(k for k in files if k.endswith("ProgramData/AzRestore/FirstBoot/install-agent.cmd"))
    ]
    text = installer.decode("ascii")
    assert text.startswith("@echo off\r\n") and "\n" not in text.replace("\r\n", "")
    assert "https://go.microsoft.com/fwlink/?linkid=394789" in text
    assert 'msiexec.exe /i "%MSI%" /quiet /norestart' in text
    assert "reg delete" in text and "Scripts\\Startup\\0" in text
    scripts = copied_out(files, work, "GroupPolicy/Machine/Scripts/scripts.ini").read_bytes()
    assert scripts.startswith(b"\xff\xfe")
    assert f"[Startup]\r\n0CmdLine={CMDLINE}\r\n0Parameters=\r\n" in scripts[2:].decode("utf-16-le")
    gpt = copied_out(files, work, "GroupPolicy/gpt.ini").read_bytes().decode("ascii")
    assert "{42B5FAAE-6536-11D2-AE5A-0000F87571E3}{40B6664F-4972-11D1-A7CA-0000F87571E3}" in gpt
    assert "\r\nVersion=1\r\n" in gpt
    if not bcd:
        return
    # Boot: the default loader's elements.
    store = copied_out(files, work, "/BCD")
    elements = f"Objects\\{LOADER}\\Elements"
    assert hivexget(store, f"{elements}\\16000009") == '"Element"=hex(3):00'
    assert hivexget(store, f"{elements}\\250000e0") == '"Element"=hex(3):01,00,00,00,00,00,00,00'
    assert hivexget(store, f"{elements}\\12000004", "Element") == "Windows Server"


def prepare_twice(script: Path, image: Path, work: Path, *args: str) -> dict[str, Any]:
    """Run on the image twice: the first prepares, the second changes nothing (every file
    and the whole disk byte-identical); checked from outside each time. The first run's
    result."""
    with attached(image) as device:
        done, result = run(script, "--device", device, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert result["ok"] is True and result["error"] == "" and result["mode"] == "device"
        assert_nothing_left(device)
        files = volume_files(device, work)
        assert_prepared(files, work, bcd=not any("no BCD store" in w for w in result["warnings"]))
        prepared = hashlib.sha256(image.read_bytes()).hexdigest()
        again, second = run(script, "--device", device, *args)
        assert again.returncode == 0, again.stdout + again.stderr
        assert second["changes"] == [] and second["warnings"] == result["warnings"]
        assert_nothing_left(device)
        after = volume_files(device, work)
        assert {k: hashlib.sha256(v).hexdigest() for k, v in after.items()} == {
            k: hashlib.sha256(v).hexdigest() for k, v in files.items()
        }
    # Not one byte of the disk written the second time (no access times either).
    assert hashlib.sha256(image.read_bytes()).hexdigest() == prepared
    return result


@needs(*TOOLS)
def test_mbr_disk_prepared_and_read_back(tmp_path: Path, script: Path, tools: None) -> None:
    image = mbr_disk(tmp_path, windows_files(tmp_path))
    result = prepare_twice(script, image, tmp_path)
    assert result["windows"] == "Windows Server 2019 Datacenter (build 17763)"
    assert result["agent"] == "first_boot"
    assert result["warnings"] == []
    changes = result["changes"]
    for change in (
        "storage: SAN policy OnlineAll",
        "time: RealTimeIsUniversal 1",
        "rdp: set fDenyTSConnections",
        "rdp listener: set PortNumber",
        "rdp: Remote Desktop Services no longer disabled (manual)",
        "services: mpssvc automatic (was 4)",
        "firewall: activated RemoteDesktop-UserMode-In-TCP",
        "firewall: added RemoteDesktop-UserMode-In-UDP",
        "firewall: added WINRM-HTTP-In-TCP",
        "agent: first-boot installer \\ProgramData\\AzRestore\\FirstBoot\\install-agent.cmd",
        "boot: recoveryenabled No",
        "boot: bootstatuspolicy IgnoreAllFailures",
    ):
        assert change in changes
    assert "services: BFE automatic" not in " ".join(changes)  # it was automatic already
    assert any("downloads the agent" in note for note in result["notes"])


@needs(*TOOLS)
def test_gpt_disk_esp_odd_case_and_a_given_msi(tmp_path: Path, script: Path, tools: None) -> None:
    """GPT (ESP + MSR + NTFS), the Windows paths in other cases than usual, the agent MSI
    from the helper copied next to the installer."""
    files = {
        name.replace("Windows/", "WINDOWS/").replace("System32/config", "system32/Config"): content
        for name, content in windows_files(tmp_path).items()
    }
    image = gpt_disk(tmp_path, files)
    msi = tmp_path / "agent.msi"
    msi.write_bytes(b"\xd0\xcf\x11\xe0 not really an MSI" * 100)
    result = prepare_twice(script, image, tmp_path, "--agent-msi", str(msi))
    assert "agent: the helper's agent MSI copied for the first-boot install" in result["changes"]
    assert result["agent"] == "first_boot"
    with attached(image) as device:
        copied = volume_files(device, tmp_path)
    hits = [v for k, v in copied.items() if k.endswith("FirstBoot/WindowsAzureVmAgent.msi")]
    assert hits == [msi.read_bytes()]
    if vfat_mounts():
        assert any(k.endswith("EFI/Microsoft/Boot/BCD") for k in copied)
        assert "boot: recoveryenabled No" in result["changes"]
    else:  # this kernel cannot mount the ESP: said so
        assert any("(vfat): its boot configuration is not read" in n for n in result["notes"])
        assert any(w.startswith("boot: no BCD store") for w in result["warnings"])


@needs(*TOOLS)
def test_agent_present_nothing_installed(tmp_path: Path, script: Path, tools: None) -> None:
    keys = system_keys()
    keys["ControlSet001\\Services\\WindowsAzureGuestAgent"] = {"Start": "dword:2"}
    # And a BCD store without a boot manager object: nothing to set there, said so.
    bcd = {"Description": {"KeyName": "string:BCD00000000"}}
    image = mbr_disk(tmp_path, windows_files(tmp_path, keys), bcd)
    with attached(image) as device:
        done, result = run(script, "--device", device)
        assert done.returncode == 0, done.stdout + done.stderr
        files = volume_files(device, tmp_path)
    assert result["agent"] == "installed"
    assert not any("FirstBoot" in k or "GroupPolicy" in k for k in files)
    assert not any(c.startswith("agent:") for c in result["changes"])
    assert not any(c.startswith("boot:") for c in result["changes"])
    assert any("Boot/BCD on" in w and "no default boot entry" in w for w in result["warnings"])
    assert hivexget(copied_out(files, tmp_path, "Boot/BCD"), "Description", "KeyName") == (
        "BCD00000000"
    )


def expect_failure(script: Path, image: Path, *needles: str) -> dict[str, Any]:
    with attached(image) as device:
        done, result = run(script, "--device", device)
        assert_nothing_left(device)
    assert done.returncode == 1, done.stdout + done.stderr
    assert result["ok"] is False
    for needle in needles:
        assert needle in result["error"], result["error"]
    return result


@needs(*TOOLS)
def test_an_ntfs_without_windows_fails(tmp_path: Path, script: Path, tools: None) -> None:
    disk = new_disk(tmp_path, 48 * MiB, "data.raw")
    sfdisk(disk, "label: dos\nstart=2048, type=7\n")
    volume = mkfs(tmp_path, "ntfs", 40 * MiB)
    fill(volume, "ntfs", {"Users/readme.txt": b"data only"})
    put(disk, MiB, volume)
    expect_failure(script, disk, "no Windows installation", "Windows\\System32\\config\\SYSTEM")


@needs(*TOOLS)
def test_random_bytes_fail(tmp_path: Path, script: Path, tools: None) -> None:
    disk = tmp_path / "noise.raw"
    disk.write_bytes(os.urandom(8 * MiB))
    expect_failure(script, disk, "no Windows installation")


@needs(*TOOLS)
def test_a_missing_control_set_fails(tmp_path: Path, script: Path, tools: None) -> None:
    keys = system_keys()
    keys["Select"] = {"Current": "dword:2"}  # ControlSet002 does not exist
    image = mbr_disk(tmp_path, windows_files(tmp_path, keys))
    result = expect_failure(script, image, "no ControlSet002", "Select\\Current")
    assert result["changes"] == []


@needs(*TOOLS)
def test_a_hibernated_windows_is_refused(tmp_path: Path, script: Path, tools: None) -> None:
    files = {**windows_files(tmp_path), "hiberfil.sys": b"HIBR" + bytes(4092)}
    image = mbr_disk(tmp_path, files)
    before = hashlib.sha256(image.read_bytes()).hexdigest()
    expect_failure(script, image, "hibernated", "not changed")
    assert hashlib.sha256(image.read_bytes()).hexdigest() == before


@needs(*TOOLS)
def test_a_hive_not_saved_cleanly_is_refused(tmp_path: Path, script: Path, tools: None) -> None:
    files = windows_files(tmp_path)
    system = files["Windows/System32/config/SYSTEM"]
    assert isinstance(system, Path)
    data = bytearray(system.read_bytes())
    data[8:12] = (int.from_bytes(data[4:8], "little") + 1).to_bytes(4, "little")  # seq2 != seq1
    system.write_bytes(bytes(data))
    image = mbr_disk(tmp_path, files)
    expect_failure(script, image, "SYSTEM hive was not saved cleanly")
    with attached(image) as device:
        after = copied_out(volume_files(device, tmp_path), tmp_path, "config/SYSTEM")
    assert after.read_bytes() == bytes(data)


def test_usage_and_refusals(script: Path) -> None:
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "--lun N" in done.stderr
    done = subprocess.run(
        ["bash", str(script), "--lun", "99"], capture_output=True, text=True, check=False
    )
    result = parse_result(done.stdout)
    assert done.returncode == 1 and result is not None and "not a LUN" in result["error"]


def test_run_command_input() -> None:
    spec = windows_offline_command(7)
    body = spec.to_dict()
    assert body["commandId"] == "RunShellScript"
    assert body["parameters"] == [{"name": "AZRESTORE_LUN", "value": "7"}]
    assert spec.text == script_text(WINDOWS_OFFLINE_SCRIPT)
    assert len(spec.text.encode()) <= MAX_SCRIPT_BYTES
    assert spec.text.isascii()
    for lun in (-1, 64, True):
        with pytest.raises(ValueError):
            windows_offline_command(lun)
    assert "NOT RUN ON A REAL WINDOWS" in spec.text


@needs("shellcheck")
def test_shellcheck() -> None:
    path = Path(__file__).parents[3] / "azrestore/restore/scripts" / WINDOWS_OFFLINE_SCRIPT
    done = subprocess.run(
        ["shellcheck", "-s", "bash", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout


def test_hive_helper_reads_back(tmp_path: Path) -> None:
    """The test hives are what hivexget reads (the tests' own ground)."""
    require("hivexsh", "hivexget")
    path = hive(tmp_path / "h", {"A\\B": {"X": "dword:7", "S": "string:hello"}})
    assert hivexget(path, "A\\B", "X") == "7"
    assert hivexget(path, "A\\B", "S") == "hello"
    assert shutil.which("hivexget")
    with pytest.raises(AssertionError):
        hivexget(path, "A\\missing")


@needs(*TOOLS)
def test_a_key_with_a_big_value_is_left_alone(tmp_path: Path, script: Path, tools: None) -> None:
    """hivexsh reads at most 8191 bytes a line without a terminal: a key holding a value too
    big to write back in hex (here an 8002-byte string, made from 4000 ASCII characters) is
    not rewritten, said so, and the rest still done."""
    keys = system_keys()
    keys[RULES] = {**keys[RULES], "Huge": "string:" + "x" * 4000}
    image = mbr_disk(tmp_path, windows_files(tmp_path, keys))
    with attached(image) as device:
        done, result = run(script, "--device", device)
        assert done.returncode == 0, done.stdout + done.stderr
        files = volume_files(device, tmp_path)
    assert any(w.startswith("firewall:") and "Huge is over 4 KiB" in w for w in result["warnings"])
    system = copied_out(files, tmp_path, "config/SYSTEM")
    assert "|Active=FALSE|" in hivexget(system, RULES, "RemoteDesktop-UserMode-In-TCP")
    assert hivexget(system, "ControlSet001\\Services\\partmgr\\Parameters", "SanPolicy") == "1"


@needs(*TOOLS)
def test_an_existing_local_group_policy_is_merged(
    tmp_path: Path, script: Path, tools: None
) -> None:
    """A gpt.ini of the disk's own keeps its extensions (ours added, sorted) and its user
    version; the machine version goes up by one."""
    other = "[{35378EAC-683F-11D2-A89A-00C04FBBCFA2}{D02B1F72-3407-48AE-BA88-E8213C6761F1}]"
    files = {
        **windows_files(tmp_path),
        "Windows/System32/GroupPolicy/gpt.ini": (
            f"[General]\r\ngPCMachineExtensionNames={other}\r\nVersion=65537\r\n"
        ).encode(),
    }
    image = mbr_disk(tmp_path, files)
    result = prepare_twice_gpt(script, image, tmp_path)
    assert result["agent"] == "first_boot"


def prepare_twice_gpt(script: Path, image: Path, work: Path) -> dict[str, Any]:
    with attached(image) as device:
        done, result = run(script, "--device", device)
        assert done.returncode == 0, done.stdout + done.stderr
        gpt = copied_out(volume_files(device, work), work, "GroupPolicy/gpt.ini").read_bytes()
        again, second = run(script, "--device", device)
        assert again.returncode == 0 and second["changes"] == []
        assert (
            copied_out(volume_files(device, work), work, "GroupPolicy/gpt.ini").read_bytes() == gpt
        )
    assert gpt.decode("ascii") == (
        "[General]\r\ngPCMachineExtensionNames=[{35378EAC-683F-11D2-A89A-00C04FBBCFA2}"
        "{D02B1F72-3407-48AE-BA88-E8213C6761F1}][{42B5FAAE-6536-11D2-AE5A-0000F87571E3}"
        "{40B6664F-4972-11D1-A7CA-0000F87571E3}]\r\nVersion=65538\r\n"
    )
    return result


@needs(*TOOLS)
def test_a_failure_while_writing_reports_and_unmounts(
    tmp_path: Path, script: Path, tools: None
) -> None:
    """hivexsh failing to write (a stand-in that refuses -w): exit 1 with the reason, the
    hives as they were, nothing left mounted."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    real = shutil.which("hivexsh")
    stub = stubs / "hivexsh"
    stub.write_text(
        f'#!/bin/sh\ncase " $* " in *" -w "*) echo "injected failure" >&2; exit 1 ;; esac\n'
        f'exec {real} "$@"\n'
    )
    stub.chmod(0o755)
    files = windows_files(tmp_path)
    original = {name: c.read_bytes() for name, c in files.items() if isinstance(c, Path)}
    image = mbr_disk(tmp_path, files)
    with attached(image) as device:
        done, result = run(
            script, "--device", device, env={"PATH": f"{stubs}:{os.environ['PATH']}"}
        )
        assert_nothing_left(device)
        after = volume_files(device, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "hivexsh could not change the SYSTEM hive" in result["error"]
    assert "injected failure" in result["error"]
    for name, data in original.items():
        assert after[f"{Path(device).name}p1/{name}"] == data, name
