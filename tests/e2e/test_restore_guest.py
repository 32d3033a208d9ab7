"""Whole-VM restores whose Linux preparation really runs: the emulator's Linux helper runs
prepare-linux.sh as root in its guest sandbox over the restored OS disk (a real GPT disk
with an ext4 root), and the disk read back from storage shows what the script did
(checked with debugfs, not with azrestore's code)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from azrestore.emulator import Emulator
from azrestore.jobs.emulated import emulated_preparation
from tests.support import plans
from tests.support.disks import needs_tools
from tests.support.guestimages import (
    LvmDisk,
    debugfs,
    exists,
    extract,
    linux_disk,
    lvm_disk,
    noise_disk,
    partition,
    require_sandbox,
)
from tests.support.restore import TIME_FACTOR, resolve, run_plan
from tests.support.restoreruns import disk_bytes
from tests.support.tools import require
from tests.support.windisk import TOOLS as WINDOWS_TOOLS
from tests.support.windisk import mbr_disk, windows_files
from tests.support.winread import FIRST_BOOT_CMDLINE, examine_prepared

pytestmark = [pytest.mark.anyio, needs_tools]

_FOOTER = 512


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    require_sandbox()
    async with Emulator(
        time_factor=TIME_FACTOR,
        scripts="run",
        run_command_rules=emulated_preparation(command_id="RunPowerShellScript"),
    ) as local_azure:
        yield local_azure


def _plan(directory: Path, vms: dict[str, Path]) -> Path:
    plan: dict[str, Any] = {
        "target": plans.target(),
        "helpers": plans.helpers(),
        "vms": [
            {
                "name": name,
                "size": "Standard_D2s_v5",
                "disks": [{"path": str(image), "role": "os"}],
            }
            for name, image in vms.items()
        ],
    }
    path = directory / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


async def _root_fs(emulator: Emulator, vm: str, work: Path, number: int = 2) -> Path:
    """The restored OS disk's root partition, read back from its managed disk's blob."""
    disk_name = emulator.arm.state().vm(vm).os_disk_id.rsplit("/", 1)[-1]
    data = await disk_bytes(emulator, disk_name)
    image = work / f"{vm}.restored.raw"
    image.write_bytes(data[:-_FOOTER])
    return partition(image, number, work / f"{vm}.root.fs")


def _assert_prepared(fs: Path, *, agent_unit: str) -> None:
    grub = debugfs(fs, "cat /etc/default/grub")
    assert "console=ttyS0" in grub, grub
    modules = debugfs(fs, "cat /etc/initramfs-tools/modules")
    assert all(m in modules for m in ("hv_vmbus", "hv_storvsc", "hv_netvsc")), modules
    fstab = debugfs(fs, "cat /etc/fstab")
    mounts = [line.split() for line in fstab.splitlines() if line and not line.startswith("#")]
    assert all(fields[0].startswith("UUID=") for fields in mounts), fstab
    assert not exists(fs, "/etc/udev/rules.d/70-persistent-net.rules")
    wants = debugfs(fs, "ls -l /etc/systemd/system/multi-user.target.wants")
    assert "ssh.service" in wants and agent_unit in wants, wants
    rules = debugfs(fs, "cat /etc/iptables/rules.v4")
    assert "--dport 22 -j ACCEPT" in rules, rules


async def test_linux_vms_prepared_for_real(emulator: Emulator, tmp_path: Path) -> None:
    images = {
        "deb01": linux_disk(tmp_path, "deb01-os.raw", agent=True),
        "deb02": linux_disk(tmp_path, "deb02-os.raw", agent=False),
    }
    resolved = await resolve(_plan(tmp_path, images))
    report = await run_plan(emulator, resolved)
    assert report.succeeded, [vm.error for vm in report.vms]
    state = emulator.arm.state()
    ran = [rc for rc in state.run_commands if rc.command_id == "RunShellScript"]
    # One batch, or two when the VMs' uploads end too far apart; each ran for real.
    assert 1 <= len(ran) <= 2 and all(rc.ran and rc.exit_code == 0 for rc in ran)
    assert all("AZRESTORE-BATCH" in rc.stdout for rc in ran)
    for name in images:
        vm = state.vm(name)
        assert vm.power_state == "running" and vm.agent_status == "Ready"
        mark = state.disk(vm.os_disk_id.rsplit("/", 1)[-1]).prepared
        assert mark is not None and any(e.startswith("sshd: ") for e in mark.evidence)
    _assert_prepared(await _root_fs(emulator, "deb01", tmp_path), agent_unit="walinuxagent")
    fs = await _root_fs(emulator, "deb02", tmp_path)
    _assert_prepared(fs, agent_unit="azrestore-install-agent.service")
    assert exists(fs, "/usr/local/sbin/azrestore-install-agent")

    # A second run finds the disks prepared already: no script runs, nothing changes.
    before = {name: await disk_bytes(emulator, f"{name}-osdisk") for name in images}
    again = await run_plan(emulator, resolved)
    assert again.succeeded, [vm.error for vm in again.vms]
    assert all(d.reused and d.bytes_uploaded == 0 for vm in again.vms for d in vm.disks)
    assert all("prepare" not in vm.steps for vm in again.vms)
    for name in images:
        disk = emulator.arm.state().disk(f"{name}-osdisk")
        assert "azrestore-prepared" in disk.tags, disk.tags
        assert await disk_bytes(emulator, f"{name}-osdisk") == before[name]
    assert len(emulator.arm.state().run_commands) == len(state.run_commands)


async def test_a_disk_the_script_cannot_read_fails_that_vm_alone(
    emulator: Emulator, tmp_path: Path
) -> None:
    noise = noise_disk(tmp_path, "noise-os.raw")
    images = {"deb01": linux_disk(tmp_path, "deb01-os.raw", agent=True), "noise01": noise}
    report = await run_plan(emulator, await resolve(_plan(tmp_path, images)))
    status = {vm.name: vm.status for vm in report.vms}
    assert status == {"deb01": "succeeded", "noise01": "failed"}, [vm.error for vm in report.vms]
    failed = next(vm for vm in report.vms if vm.name == "noise01")
    # The report carries the script's own words: its result's error and its stderr tail.
    assert "preparing the disks failed: no Linux root file system" in (failed.error or "")
    assert "(stderr: error: no Linux root file system" in (failed.error or ""), failed.error
    state = emulator.arm.state()
    assert state.vm("deb01").agent_status == "Ready"
    assert "noise01" not in {vm.name for vm in state.virtual_machines.values()}


async def _lv_fs(emulator: Emulator, vm: str, disk: LvmDisk, work: Path) -> Path:
    """The restored OS disk's root LV, read back from storage where LVM put its bytes."""
    disk_name = emulator.arm.state().vm(vm).os_disk_id.rsplit("/", 1)[-1]
    data = await disk_bytes(emulator, disk_name)
    image = work / f"{vm}.restored.raw"
    image.write_bytes(data[:-_FOOTER])
    return extract(image, disk.lv_offset, disk.lv_size, work / f"{vm}.lv.fs")


def _assert_lv_prepared(fs: Path, vg: str) -> None:
    grub = debugfs(fs, "cat /etc/default/grub")
    assert "console=ttyS0" in grub, grub
    modules = debugfs(fs, "cat /etc/initramfs-tools/modules")
    assert all(m in modules for m in ("hv_vmbus", "hv_storvsc", "hv_netvsc")), modules
    # An LVM name is stable: fstab keeps it.
    assert debugfs(fs, "cat /etc/fstab").startswith(f"/dev/mapper/{vg}-root / ext4")
    assert not exists(fs, "/etc/udev/rules.d/70-persistent-net.rules")
    wants = debugfs(fs, "ls -l /etc/systemd/system/multi-user.target.wants")
    assert "ssh.service" in wants and "walinuxagent" in wants, wants
    assert "--dport 22 -j ACCEPT" in debugfs(fs, "cat /etc/iptables/rules.v4")


async def test_root_on_lvm(emulator: Emulator, tmp_path: Path) -> None:
    disk = lvm_disk(tmp_path, "lvm01-os.raw")
    report = await run_plan(emulator, await resolve(_plan(tmp_path, {"lvm01": disk.path})))
    assert report.succeeded, [vm.error for vm in report.vms]
    state = emulator.arm.state()
    assert state.vm("lvm01").agent_status == "Ready"
    mark = state.disk(state.vm("lvm01").os_disk_id.rsplit("/", 1)[-1]).prepared
    assert mark is not None and any("/dev/azrvg/root" in e for e in mark.evidence), mark
    _assert_lv_prepared(await _lv_fs(emulator, "lvm01", disk, tmp_path), "azrvg")


async def test_a_windows_vm_is_prepared_by_the_linux_helper_alone(
    emulator: Emulator, tmp_path: Path
) -> None:
    require(*WINDOWS_TOOLS)
    images = {
        "deb01": linux_disk(tmp_path, "deb01-os.raw", agent=True),
        "win01": mbr_disk(tmp_path, windows_files(tmp_path)),
    }
    plan = yaml.safe_load(_plan(tmp_path, images).read_text())
    plan["helpers"] = {"linux": plans.helpers()["linux"]}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    resolved = await resolve(path)
    assert {vm.name: vm.os_family for vm in resolved.vms} == {"deb01": "linux", "win01": "windows"}
    report = await run_plan(emulator, resolved)
    assert report.succeeded, [vm.error for vm in report.vms]
    state = emulator.arm.state()
    # Both ran for real on the Linux helper (the two scripts go in separate batches).
    ran = [rc for rc in state.run_commands if rc.ran]
    assert ran and all(rc.command_id == "RunShellScript" and rc.exit_code == 0 for rc in ran)
    assert not any(rc.command_id == "RunPowerShellScript" for rc in state.run_commands)
    win = state.vm("win01")
    assert win.os_type == "Windows" and win.agent_status == "Ready"
    data = await disk_bytes(emulator, "win01-osdisk")
    found = await anyio.to_thread.run_sync(examine_prepared, data, tmp_path)
    assert found["fDenyTSConnections"] == "0" and found["PortNumber"] == "3389"
    assert found["SanPolicy"] == "1" and found["RealTimeIsUniversal"] == "1"
    assert "|Active=TRUE|" in found["rdp-tcp"] and found["startup"] == FIRST_BOOT_CMDLINE
    assert "msiexec.exe" in found["installer"]

    # A second run: both found prepared, nothing runs, not one byte changes.
    again = await run_plan(emulator, resolved)
    assert again.succeeded and all("prepare" not in vm.steps for vm in again.vms)
    assert await disk_bytes(emulator, "win01-osdisk") == data
    assert len(emulator.arm.state().run_commands) == len(state.run_commands)
