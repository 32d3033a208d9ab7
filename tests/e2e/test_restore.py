"""Whole-VM restores end to end: the real SDK clients against the emulator (Resource
Manager simulator, strict gateway, Azurite), with real disk images."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from azrestore.emulator import Emulator, RunCommandOutcome, RunCommandRule
from azrestore.jobs.emulated import emulated_preparation
from tests.support.disks import needs_tools
from tests.support.plans import vm_id
from tests.support.restore import TIME_FACTOR, resolve, run_plan, write_plan

pytestmark = [pytest.mark.anyio, needs_tools]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=emulated_preparation()
    ) as local_azure:
        yield local_azure


async def test_three_vms_restore(emulator: Emulator, backups: Path, tmp_path: Path) -> None:
    resolved = await resolve(write_plan(tmp_path, backups))
    report = await run_plan(emulator, resolved)
    by_name = {vm.name: vm for vm in report.vms}
    assert all(vm.status == "succeeded" for vm in report.vms), [v.error for v in report.vms]
    assert report.left_in_azure == []
    state = emulator.arm.state()
    expected = {"web01": ("Linux", "V2"), "dc01": ("Windows", "V1"), "db01": ("Linux", "V1")}
    for name, (os_type, generation) in expected.items():
        vm = state.vm(name)
        assert (vm.os_type, vm.hyper_v_generation) == (os_type, generation)
        assert vm.power_state == "running" and vm.agent_status == "Ready"
        assert by_name[name].steps == [
            "upload",
            "mount",
            "prepare",
            "unmount",
            "register",
            "agent",
            "done",
        ]
    assert [d.lun for d in state.vm("db01").data_disks] == [0, 1]
    # Preparation ran on the helper of each family, with azrestore's scripts.
    commands = {(rc.vm_id.rsplit("/", 1)[-1], rc.command_id) for rc in state.run_commands}
    assert commands == {
        ("helper-linux", "RunShellScript"),
        ("helper-windows", "RunPowerShellScript"),
    }
    # Helpers and proxy end deallocated; disks are attached to the restored VMs only.
    for shared in ("helper-linux", "helper-windows", "azproxy"):
        assert state.vm(shared).power_state == "deallocated"
        assert state.vm(shared).data_disks == ()
    for disk in state.disks.values():
        if disk.name.startswith(("web01", "dc01", "db01")):
            assert disk.disk_state == "Attached"
    proxy_history = report.shared_vms[vm_id("azproxy")]
    assert proxy_history[0] == "started" and proxy_history[-1].startswith("deallocated")
    assert proxy_history.count("started") == 1
    uploaded = {d.path: d.bytes_uploaded for vm in report.vms for d in vm.disks}
    assert all(size > 0 for size in uploaded.values())

    # Re-running the plan reuses what exists: nothing is uploaded or created twice.
    disks_before = set(state.disks)
    again = await run_plan(emulator, resolved)
    assert all(vm.status == "succeeded" for vm in again.vms), [v.error for v in again.vms]
    assert all(d.reused and d.bytes_uploaded == 0 for vm in again.vms for d in vm.disks)
    assert set(emulator.arm.state().disks) == disks_before


async def test_a_failed_vm_does_not_stop_the_others(backups: Path, tmp_path: Path) -> None:
    failing = RunCommandRule(
        script=r"\$Lun\b",  # the PowerShell script's parameter (not in base64: "$")
        outcome=RunCommandOutcome(error_code="VMExtensionProvisioningError", prepares=False),
    )
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=[failing, *emulated_preparation()]
    ) as local_azure:
        resolved = await resolve(write_plan(tmp_path, backups))
        report = await run_plan(local_azure, resolved)
        status = {vm.name: vm.status for vm in report.vms}
        assert status == {"web01": "succeeded", "dc01": "failed", "db01": "succeeded"}
        failed = next(vm for vm in report.vms if vm.name == "dc01")
        assert "VMExtensionProvisioningError" in (failed.error or "")
        assert failed.steps[-1] == "failed" and "register" not in failed.steps
        # What the failed VM left in Azure is reported by id: its uploaded disk.
        assert failed.disks[0].disk_id is not None
        assert any(
            r.endswith("/disks/" + failed.disks[0].disk_id.rsplit("/", 1)[-1])
            for r in report.left_in_azure
        )
        state = local_azure.arm.state()
        assert state.vm("helper-windows").power_state == "deallocated"
        assert state.vm("helper-windows").data_disks == ()
        # Access to every disk was revoked.
        assert all(d.disk_state != "ActiveUpload" for d in state.disks.values())


def test_backups_fixture_has_real_tools() -> None:
    assert shutil.which("sfdisk") is not None


async def test_page_blob_mode_imports_the_disks(
    emulator: Emulator, backups: Path, tmp_path: Path
) -> None:
    info = emulator.info()
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(emulator.azurite.connection_string) as service:
        service.create_container("vhds")
    plan_path = write_plan(tmp_path, backups)
    data = yaml.safe_load(plan_path.read_text())
    data["vms"] = data["vms"][2:]  # db01: an OS disk and two data disks
    data["target"].update(
        disks="page-blob",
        storage_account=info["blob_endpoint"],
        storage_account_id=info["storage_account_id"],
    )
    plan_path.write_text(yaml.safe_dump(data, sort_keys=False))
    report = await run_plan(
        emulator,
        await resolve(plan_path),
        storage_connection_string=info["storage_connection_string"],
    )
    assert [vm.status for vm in report.vms] == ["succeeded"], [v.error for v in report.vms]
    state = emulator.arm.state()
    imported = [d for d in state.disks.values() if d.name.startswith("db01")]
    assert len(imported) == 3
    assert {d.create_option for d in imported} == {"Import"}
    assert all(d.disk_state == "Attached" for d in imported)
