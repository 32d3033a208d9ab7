"""``azrestore plan example`` and ``azrestore restore``: dry runs, bad plans, whole runs on
the emulator (exit 0, and exit 1 when a VM fails), and ``make demo``'s script.

Commands that start an emulator, or that must be seen from outside (environment, exit
status, processes left behind), run as subprocesses through ``anyio.run_process``. Each
gets a marker in its environment, which every process it starts inherits, so that a
test can tell whether any of them outlived the command.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from azrestore.azure.arm import ArmSettings
from azrestore.azure.controlplane import ControlPlane
from azrestore.emulator import Emulator, RunCommandOutcome, RunCommandRule
from azrestore.emulator.azurite import EmulatorError, find_azurite
from azrestore.formats.sizes import MiB
from azrestore.jobs.emulated import bootstrap_emulator, emulated_preparation
from azrestore.jobs.restore import load_and_resolve
from azrestore.restore.plan import example_plan, load_plan, parse_plan
from tests.support.cli import assert_one_line_error, azrestore_script, invoke
from tests.support.disks import needs_tools
from tests.support.plans import SUB, helpers, target, vm_id, write
from tests.support.qemu import encrypted_qcow2
from tests.support.restore import TIME_FACTOR
from tests.support.tools import needs, require

MARKER = "AZRESTORE_TEST_MARKER"
#: Seconds a command under test may take (they take a few).
COMMAND_TIMEOUT = 60


def _azurite_missing() -> str | None:
    try:
        find_azurite()
    except EmulatorError as exc:
        return str(exc)
    return None


_AZURITE_MISSING = _azurite_missing()
needs_azurite = pytest.mark.skipif(_AZURITE_MISSING is not None, reason=str(_AZURITE_MISSING))


# -- helpers ------------------------------------------------------------------------------


def plan_data(images: Path, **vm_extra: Any) -> dict[str, Any]:
    """A plan restoring web01 and dc01 from ``images``; ``vm_extra`` goes on both VMs."""
    return {
        "target": target(),
        "proxy": {"vm": vm_id("azproxy"), "idle_timeout": 1},
        "helpers": helpers(),
        "vms": [
            {
                "name": "web01",
                "size": "Standard_D2s_v5",
                "disks": [{"path": str(images / "web01-os.raw"), "role": "os"}],
                **vm_extra,
            },
            {
                "name": "dc01",
                "size": "Standard_D2s_v5",
                "disks": [{"path": str(images / "dc01-os.raw"), "role": "os"}],
                **vm_extra,
            },
        ],
    }


def marked_processes(marker: str) -> list[str]:
    """Command lines of the processes whose environment holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # gone, or not ours
            continue
    return found


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def command_env(extra: Mapping[str, str] | None = None) -> tuple[dict[str, str], str]:
    """The environment for a command under test, with a fresh marker; and the marker."""
    marker = uuid.uuid4().hex
    env = {**os.environ, **(extra or {}), MARKER: marker}
    return env, marker


async def run_cli(
    *args: str | Path,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``azrestore ARGS`` in a subprocess, without blocking the event loop (the test's
    emulator runs on it)."""
    with anyio.fail_after(COMMAND_TIMEOUT):
        done = await anyio.run_process([*azrestore_script(), *map(str, args)], env=env, check=False)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


# -- plan example ---------------------------------------------------------------------


def test_plan_example_prints_a_plan_that_loads(tmp_path: Path) -> None:
    result = invoke("plan", "example")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == example_plan()
    plan = parse_plan(result.stdout, source="example.yaml", base_dir=tmp_path)
    assert [vm.name for vm in plan.vms] == ["web01", "db01"]
    assert plan.vms[0].disks[0].path == str(tmp_path / "backups/web01-os.raw")
    path = tmp_path / "example.yaml"
    path.write_text(result.stdout)
    assert load_plan(path).model_dump() == plan.model_dump()


# -- dry run ------------------------------------------------------------------------------

#: Nothing listens on port 9 (discard); a run that contacted Azure would fail.
CLOSED_ARM = {"AZRESTORE_ARM_ENDPOINT": "https://127.0.0.1:9", "AZRESTORE_ARM_TOKEN": "token"}


@needs_tools
@pytest.mark.anyio
@pytest.mark.parametrize("emulator", [False, True], ids=["azure", "emulator"])
async def test_dry_run_prints_the_steps_and_touches_nothing(
    images: Path, tmp_path: Path, emulator: bool
) -> None:
    plan = write(tmp_path, plan_data(images))
    before = names(tmp_path)
    # Without node on PATH an emulator cannot start (Azurite runs on it).
    env, marker = command_env({**CLOSED_ARM, "PATH": str(Path(sys.executable).parent)})
    flags = ["--emulator"] if emulator else []
    result = await run_cli("restore", plan, "--dry-run", *flags, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("power on the proxy ") and lines[0].endswith(
        "azproxy (off after 1 s idle)"
    )
    assert "web01: linux, generation V2, size Standard_D2s_v5" in lines
    assert "dc01: windows, generation V1, size Standard_D2s_v5" in lines
    uploads = [line.strip() for line in lines if line.strip().startswith("upload ")]
    assert len(uploads) == 2
    assert uploads[0].startswith(f"upload {images / 'web01-os.raw'} (64.0 MiB")
    assert uploads[0].endswith("as OS disk restored/web01-osdisk (StandardSSD_LRS)")
    assert lines[-1] == "leave the proxy and helpers deallocated"
    assert names(tmp_path) == before
    assert marked_processes(marker) == []
    if emulator:  # the same without --dry-run does need the emulator
        started = await run_cli("restore", plan, *flags, env=env)
        assert started.returncode == 1 and "Azurite" in started.stderr


@needs_tools
@pytest.mark.anyio
async def test_dry_run_json_is_one_object(images: Path, tmp_path: Path) -> None:
    plan = write(tmp_path, plan_data(images))
    env, _ = command_env(CLOSED_ARM)
    result = await run_cli("restore", plan, "--dry-run", "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # one object, nothing else on stdout
    assert data["dry_run"] is True
    assert data["subscription"] == SUB
    vms = {vm["name"]: vm for vm in data["vms"]}
    assert (vms["web01"]["os_family"], vms["web01"]["generation"]) == ("linux", "V2")
    assert (vms["dc01"]["os_family"], vms["dc01"]["generation"]) == ("windows", "V1")
    assert vms["dc01"]["helper"] == vm_id("helper-windows")
    assert vms["web01"]["disks"][0]["path"] == str(images / "web01-os.raw")
    assert data["steps"][-1] == "leave the proxy and helpers deallocated"
    assert data["warnings"] == []


# -- bad plans: exit 2, one line naming the field ------------------------------------------


def _encrypted_qcow2(directory: Path) -> Path:
    """A qcow2 image is read, but an encrypted one is refused, saying so."""
    require("qemu-img")
    return encrypted_qcow2(directory / "web01.qcow2", "64M")


def _bad_plan(kind: str, directory: Path) -> tuple[dict[str, Any], list[str]]:
    """A plan with one kind of problem, and what its error line must say."""
    image = directory / "web01-os.raw"
    with image.open("wb") as handle:
        handle.truncate(64 * MiB)  # never inspected: the plan is refused first
    data = plan_data(directory)
    del data["vms"][1]
    vm = data["vms"][0]
    if kind == "missing field":
        del vm["size"]
        return data, ["vms[0].size: required"]
    if kind == "bad lun":
        vm["disks"].append({"path": str(image) + ".data", "role": "data", "lun": 64})
        return data, ["vms[0].disks[1].lun", "64"]
    if kind == "missing image":
        vm["disks"][0]["path"] = str(directory / "nope.raw")
        return data, ["vms[0].disks[0].path", "nope.raw", "no such file"]
    if kind == "encrypted qcow2":
        vm["disks"][0]["path"] = str(_encrypted_qcow2(directory))
        return data, ["vms[0].disks[0].path", "web01.qcow2", "encrypt"]
    assert kind == "two problems"
    del vm["size"]
    vm["disks"][0]["role"] = "boot"
    return data, ["vms[0].size: required", "vms[0].disks[0].role", "; "]


@pytest.mark.parametrize("flags", [["--dry-run"], [], ["--emulator"]], ids=["dry", "run", "emu"])
@pytest.mark.parametrize(
    "kind", ["missing field", "bad lun", "missing image", "encrypted qcow2", "two problems"]
)
def test_bad_plan_is_exit_2_with_one_line(tmp_path: Path, kind: str, flags: list[str]) -> None:
    data, expected = _bad_plan(kind, tmp_path)
    plan = write(tmp_path, data)
    line = assert_one_line_error(invoke("restore", plan, *flags), 2)
    assert str(plan) in line
    for text in expected:
        assert text in line, line


def test_missing_plan_file_is_exit_2(tmp_path: Path) -> None:
    line = assert_one_line_error(invoke("restore", tmp_path / "nope.yaml", "--dry-run"), 2)
    assert "nope.yaml: no such file" in line


# -- whole runs on the emulator ---------------------------------------------------------------


@needs_tools
@needs_azurite
@pytest.mark.anyio
async def test_emulator_run_json_report(images: Path, tmp_path: Path) -> None:
    plan = write(tmp_path, plan_data(images))
    env, marker = command_env()
    # The images are not bootable Linux disks: the helper records their preparation.
    result = await run_cli(
        "restore",
        plan,
        "--emulator",
        "--emulator-scripts",
        "record",
        "--json",
        "--time-factor",
        str(TIME_FACTOR),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"vms", "left_in_azure", "seconds"}
    assert report["left_in_azure"] == []
    assert 0 < report["seconds"] < 60
    expected = {"web01": ("linux", "V2"), "dc01": ("windows", "V1")}
    assert [vm["name"] for vm in report["vms"]] == list(expected)
    for vm in report["vms"]:
        assert vm["status"] == "succeeded", vm
        assert vm["error"] is None
        assert (vm["os"], vm["generation"]) == expected[vm["name"]]
        assert vm["vm_id"] == (
            f"/subscriptions/{SUB}/resourceGroups/restored/providers"
            f"/Microsoft.Compute/virtualMachines/{vm['name']}"
        )
        [disk] = vm["disks"]
        assert disk["path"] == str(images / f"{vm['name']}-os.raw")
        assert disk["disk_id"].endswith(
            f"/resourceGroups/restored/providers/Microsoft.Compute/disks/{vm['name']}-osdisk"
        )
        assert disk["bytes_uploaded"] > 0
        assert vm["steps"][-1] == "done"
    # The emulator (Azurite included) is gone with the command.
    assert marked_processes(marker) == []


@needs_tools
@needs_azurite
@pytest.mark.anyio
async def test_a_failed_vm_is_exit_1(images: Path, tmp_path: Path) -> None:
    """The Windows preparation fails in an emulator this test runs; ``azrestore restore``
    (no --emulator) is pointed at it by the environment and exits 1."""
    failing = RunCommandRule(
        script=r"\$Lun\b",  # the PowerShell script's parameter (not in base64: "$")
        outcome=RunCommandOutcome(error_code="VMExtensionProvisioningError", prepares=False),
    )
    # Without --emulator the agent is polled every 10 s, as in Azure: not waited for here.
    plan = write(tmp_path, plan_data(images, wait_for_agent=False))
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=[failing, *emulated_preparation()]
    ) as local_azure:
        arm_env = {k: str(v) for k, v in local_azure.info()["env"].items()}
        resolved = await load_and_resolve(plan, arm_env)
        async with ControlPlane(ArmSettings.from_env(arm_env)) as control:
            await bootstrap_emulator(control, resolved)
        env, marker = command_env(arm_env)
        result = await run_cli("restore", plan, "--json", env=env)
        state = local_azure.arm.state()
        assert result.returncode == 1, result.stderr
        report = json.loads(result.stdout)
        status = {vm["name"]: vm["status"] for vm in report["vms"]}
        assert status == {"web01": "succeeded", "dc01": "failed"}
        failed = report["vms"][1]
        assert "VMExtensionProvisioningError" in failed["error"]
        assert failed["steps"][-1] == "failed" and "register" not in failed["steps"]
        assert failed["disks"][0]["disk_id"] in report["left_in_azure"]
        assert state.vm("web01").power_state == "running"
        for shared in ("helper-linux", "helper-windows", "azproxy"):
            assert state.vm(shared).power_state == "deallocated"
        assert marked_processes(marker) == []


# -- make demo ---------------------------------------------------------------------------

#: The disk tools the demo builds its images with, and qemu-utils: qemu-img writes the
#: exports (and judges them here), qemu-nbd is how azrestore reads them.
DEMO_TOOLS = (
    *("sfdisk", "mkfs.ext4", "mkfs.vfat", "mkntfs", "ntfs-3g", "hivexsh"),
    *("qemu-img", "qemu-nbd"),
)
needs_demo_tools = needs(*DEMO_TOOLS)


def qemu_info(image: Path) -> dict[str, Any]:
    """What qemu-img (not azrestore) says the image is."""
    result = subprocess.run(
        ["qemu-img", "info", "--output=json", str(image)],
        capture_output=True,
        text=True,
        check=True,
    )
    info: dict[str, Any] = json.loads(result.stdout)
    return info


def demo_command(*args: str) -> list[str]:
    """``python -m azrestore.cli.demo ARGS`` with Ctrl-C working even if this test runs
    with SIGINT ignored (as background jobs of a shell do): Python keeps an ignored SIGINT."""
    start = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL);"
        " os.execv(sys.executable, [sys.executable, '-m', 'azrestore.cli.demo', *sys.argv[1:]])"
    )
    return [sys.executable, "-c", start, *args]


@needs_demo_tools
@needs_azurite
@pytest.mark.anyio
async def test_demo_quick_runs_to_the_end(tmp_path: Path) -> None:
    env, marker = command_env()
    out = tmp_path / "demo-out"
    with anyio.fail_after(60):
        result = await anyio.run_process(
            demo_command("--quick", "--out", str(out)), env=env, cwd=tmp_path, check=False
        )
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, stdout[-3000:] + stderr
    assert "demo done" in stdout
    # what each backup is, inspect of the Linux export, the dry run, and the report
    assert "web01: streamOptimized VMDK (OVA export)" in stdout
    assert "dc01: dynamic VHDX (Hyper-V export)" in stdout
    assert re.search(r"^\s*format\s+vmdk\s*$", stdout, re.M), stdout[-3000:]
    assert "uefi" in stdout and "V2" in stdout
    assert "web01: linux, generation V2" in stdout
    assert "dc01: windows, generation V1" in stdout
    # One Linux helper prepares both; the Windows disk offline, its hives built in.
    assert "prepare (offline)" in stdout
    if os.geteuid() == 0:
        assert "Windows' SYSTEM and SOFTWARE hives" in stdout
    assert "restore report" in stdout
    for vm in ("web01", "dc01"):
        assert re.search(rf"^│ {vm}\s+│ succeeded\s+│", stdout, re.M), stdout[-3000:]
    assert "failed" not in stdout

    # The plan points at the exports, and the exports are what qemu-img says they are:
    # a streamOptimized VMDK, and a dynamic VHDX (a file far smaller than its disk).
    plan = load_plan(out / "plan.yaml")
    assert [vm.name for vm in plan.vms] == ["web01", "dc01"]
    assert "windows:" not in (out / "plan.yaml").read_text()
    disks = [Path(vm.disks[0].path) for vm in plan.vms]
    assert disks == [out / "web01-os.vmdk", out / "dc01-os.vhdx"]
    vmdk, vhdx = qemu_info(disks[0]), qemu_info(disks[1])
    assert vmdk["format"] == "vmdk"
    assert vmdk["format-specific"]["data"]["create-type"] == "streamOptimized"
    assert vhdx["format"] == "vhdx"
    assert disks[1].stat().st_size < vhdx["virtual-size"] // 10
    # the raw intermediates are gone: demo-out/ holds the exports and the plan
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == {
        "web01-os.vmdk",
        "dc01-os.vhdx",
        "plan.yaml",
    }
    assert marked_processes(marker) == []


@needs_demo_tools
@needs_azurite
@pytest.mark.anyio
async def test_demo_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """Ctrl-C during the restore: exit 130, and no process is left (Azurite included)."""
    env, marker = command_env()
    output = bytearray()
    with anyio.fail_after(60):
        async with await anyio.open_process(
            demo_command("--quick", "--out", str(tmp_path / "demo-out")),
            env=env,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, as a terminal's job
        ) as demo:
            assert demo.stdout is not None
            async for chunk in demo.stdout:
                output += chunk
                if b": upload" in output:  # the restore is under way
                    break
            os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C sends to the job
            async for chunk in demo.stdout:
                output += chunk
            code = await demo.wait()
    text = output.decode(errors="replace")
    assert code == 130, text[-3000:]
    assert "demo: interrupted" in text
    assert marked_processes(marker) == []
