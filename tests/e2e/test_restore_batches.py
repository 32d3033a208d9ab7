"""Preparation in batches, judged from the emulator's log and state: one attach update,
one run command and one detach update per batch; several helpers share the work; helpers
created for the run are deleted with their NIC and OS disk and reported; Ctrl-C in a batch
leaves the helpers deallocated and their disks detached; a VM failing inside a batch
fails alone with its stderr tail."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from azrestore.azure.arm import ArmSettings
from azrestore.azure.controlplane import ControlPlane
from azrestore.cli.restore import RestoreView, helper_lines
from azrestore.emulator import Emulator, RunCommandOutcome, RunCommandRule
from azrestore.emulator.arm.run_command_rules import RunCommandInvocation
from azrestore.jobs.emulated import bootstrap_emulator, emulated_batch_outcome, emulated_preparation
from azrestore.restore.batchscript import batch_luns
from azrestore.restore.outcome import RestoreReport
from azrestore.restore.run import RestoreRun
from azrestore.restore.settings import RestoreSettings
from azrestore.transfer.config import TransferConfig
from tests.support.disks import needs_tools
from tests.support.plans import vm_id
from tests.support.restore import TIME_FACTOR, resolve, run_plan, write_plan

pytestmark = [pytest.mark.anyio, needs_tools]


def many_vms_plan(tmp_path: Path, backups: Path, count: int, helpers: Any) -> Path:
    """``count`` Linux VMs of one disk each (copies of web01's backup)."""
    images = tmp_path / "images"
    images.mkdir()
    vms = []
    for index in range(count):
        image = images / f"vm{index}-os.raw"
        shutil.copyfile(backups / "web01-os.raw", image)
        vms.append(
            {
                "name": f"vm{index}",
                "size": "Standard_D2s_v5",
                "disks": [{"path": str(image), "role": "os"}],
            }
        )
    plan = write_plan(tmp_path, backups)
    data = yaml.safe_load(plan.read_text())
    data["vms"] = vms
    data["helpers"] = helpers
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    return plan


def helper_operations(emulator: Emulator, helper: str) -> list[str]:
    """The operations on ``helper`` that succeeded, in order (power ones left out)."""
    return [
        entry.operation
        for entry in emulator.arm.log(polls=False)
        if entry.kind == "operation"
        and entry.outcome == "Succeeded"
        and (entry.resource_id or "").lower().endswith(f"/virtualmachines/{helper}")
        and entry.operation in ("virtualMachines/write", "virtualMachines/runCommand")
    ]


def assert_clean(emulator: Emulator, helpers: list[str]) -> None:
    state = emulator.arm.state()
    for name in helpers:
        assert state.vm(name).power_state == "deallocated", name
        assert state.vm(name).data_disks == (), name
    assert state.vm("azproxy").power_state == "deallocated"
    assert all(d.disk_state not in ("ActiveUpload", "ActiveSAS") for d in state.disks.values())


async def test_one_update_one_run_command_one_update_per_batch(
    backups: Path, tmp_path: Path
) -> None:
    plan = many_vms_plan(tmp_path, backups, 4, {"linux": vm_id("helper-linux")})
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=emulated_preparation()
    ) as emulator:
        report = await run_plan(emulator, await resolve(plan))
        assert report.succeeded, [vm.error for vm in report.vms]
        # The helper (Standard_B2s: 4 data disks) takes the 4 VMs in one batch.
        assert [sorted(b["vms"]) for b in report.batches] == [["vm0", "vm1", "vm2", "vm3"]]
        assert helper_operations(emulator, "helper-linux") == [
            "virtualMachines/write",  # create (the bootstrap)
            "virtualMachines/write",  # attach the 4 OS disks
            "virtualMachines/runCommand",
            "virtualMachines/write",  # detach them
        ]
        (command,) = emulator.arm.state().run_commands
        assert len(batch_luns(command.script)) == 4
        assert_clean(emulator, ["helper-linux"])


async def test_more_vms_than_slots_are_spread_over_several_helpers(
    backups: Path, tmp_path: Path
) -> None:
    helpers = [vm_id("helper-a"), vm_id("helper-b")]
    plan = many_vms_plan(tmp_path, backups, 8, {"linux": helpers})
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=emulated_preparation()
    ) as emulator:
        report = await run_plan(emulator, await resolve(plan))
        assert report.succeeded, [vm.error for vm in report.vms]
        used = {b["helper"].rsplit("/", 1)[-1] for b in report.batches}
        assert used == {"helper-a", "helper-b"}
        # No batch holds more than a Standard_B2s takes, every VM is in one.
        assert all(len(b["vms"]) <= 4 for b in report.batches)
        assert sorted(vm for b in report.batches for vm in b["vms"]) == [f"vm{i}" for i in range(8)]
        for name in ("helper-a", "helper-b"):
            operations = helper_operations(emulator, name)
            batches = sum(1 for b in report.batches if b["helper"].endswith(name))
            assert operations.count("virtualMachines/runCommand") == batches
            assert operations.count("virtualMachines/write") == 1 + 2 * batches
        assert_clean(emulator, ["helper-a", "helper-b"])


async def test_created_helpers_are_deleted_with_their_nic_and_os_disk(
    backups: Path, tmp_path: Path
) -> None:
    plan = many_vms_plan(tmp_path, backups, 3, {"linux": {"create": 2, "size": "Standard_B2s"}})
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=emulated_preparation()
    ) as emulator:
        resolved = await resolve(plan)
        assert resolved.vms[0].helper == "2 helper(s) created for the run (Standard_B2s)"
        report = await run_plan(emulator, resolved)
        assert report.succeeded, [vm.error for vm in report.vms]
        created = report.created_helpers
        assert len(created) == 2
        assert all(h["created"] and h["deleted"] and h["error"] is None for h in created)
        assert all(h["family"] == "linux" and h["size"] == "Standard_B2s" for h in created)
        assert report.to_json()["created_helpers"] == created
        names = {h["vm_id"].rsplit("/", 1)[-1] for h in created}
        assert {b["helper"].rsplit("/", 1)[-1] for b in report.batches} <= names
        await emulator.arm.wait_idle()
        state = emulator.arm.state()
        assert not [vm for vm in state.virtual_machines.values() if vm.name in names]
        assert not [n for n in state.network_interfaces.values() if n.name.startswith(tuple(names))]
        # Their OS disks went with them: only the restored VMs' disks (and the proxy's).
        left = sorted(d.name for d in state.disks.values() if not d.name.startswith("azproxy"))
        assert left == [f"vm{i}-osdisk" for i in range(3)]
        deleted = {
            (e.resource_id or "").rsplit("/", 1)[-1]
            for e in emulator.arm.log(polls=False)
            if e.operation == "virtualMachines/delete" and e.outcome == "Succeeded"
        }
        assert deleted == names
        # The report's lines say so.
        lines = helper_lines(report)
        assert sum("created for the run, deleted" in line for line in lines) == 2


@pytest.mark.parametrize("created", [False, True], ids=["named", "created"])
async def test_ctrl_c_in_a_batch_leaves_helpers_deallocated_and_disks_detached(
    backups: Path, tmp_path: Path, created: bool
) -> None:
    helpers: Any = {"create": 1, "size": "Standard_B2s"} if created else vm_id("helper-linux")
    plan = many_vms_plan(tmp_path, backups, 4, {"linux": helpers})
    slow = RunCommandRule(
        script="AZRESTORE-BATCH",
        handler=lambda invocation: emulated_batch_outcome(invocation.script),
        duration=3600,  # simulated seconds: the batch runs until the cancel
    )
    async with Emulator(time_factor=TIME_FACTOR, run_command_rules=[slow]) as emulator:
        resolved = await resolve(plan)
        settings = ArmSettings.from_env({k: str(v) for k, v in emulator.info()["env"].items()})
        reached = anyio.Event()
        reports: list[RestoreReport] = []

        class Watch(RestoreView):
            def step(self, vm: str, step: str) -> None:
                super().step(vm, step)
                if step == "prepare":
                    reached.set()

            def finished(self, report: RestoreReport) -> None:
                reports.append(report)

        async with ControlPlane(settings) as control:
            await bootstrap_emulator(control, resolved)
            run = RestoreRun(
                resolved,
                control,
                config=TransferConfig(concurrency=4),
                settings=RestoreSettings(
                    agent_timeout=30, agent_poll_interval=0.05, batch_window=1.0
                ),
                observer=Watch(None),
            )
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(run.run)
                await reached.wait()
                await anyio.sleep(0.2)
                tasks.cancel_scope.cancel()
        await emulator.arm.wait_idle()
        (report,) = reports
        assert report.interrupted
        assert {vm.status for vm in report.vms} == {"interrupted"}
        if not created:
            assert_clean(emulator, ["helper-linux"])
            return
        # The helper made for the run is gone, and the report says so.
        (helper,) = report.created_helpers
        assert helper["created"] and helper["deleted"], helper
        state = emulator.arm.state()
        name = helper["vm_id"].rsplit("/", 1)[-1]
        assert name not in {vm.name for vm in state.virtual_machines.values()}
        assert not [n for n in state.network_interfaces.values() if n.name.startswith(name)]
        # Its disks detached from it before: the restored disks are not held by any VM.
        restored = [d for d in state.disks.values() if d.name.startswith("vm")]
        assert restored and all(d.managed_by is None for d in restored)
        assert all(d.disk_state not in ("ActiveUpload", "ActiveSAS") for d in state.disks.values())
        assert state.vm("azproxy").power_state == "deallocated"


async def test_a_vm_failing_in_a_batch_fails_alone_with_its_stderr_tail(
    backups: Path, tmp_path: Path
) -> None:
    plan = many_vms_plan(tmp_path, backups, 4, {"linux": vm_id("helper-linux")})

    def first_fails(invocation: RunCommandInvocation) -> RunCommandOutcome:
        luns = batch_luns(invocation.script)
        failed = {luns[0]: ("no root file system found", "mount: wrong fs type on /dev/sdc2")}
        return emulated_batch_outcome(invocation.script, failed)

    rule = RunCommandRule(script="AZRESTORE-BATCH", handler=first_fails, times=1)
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=[rule, *emulated_preparation()]
    ) as emulator:
        report = await run_plan(emulator, await resolve(plan))
        assert len(report.batches) == 1, report.batches
        failed = [vm for vm in report.vms if vm.status == "failed"]
        assert len(failed) == 1
        assert failed[0].name == report.batches[0]["vms"][0]  # the batch's first job
        error = failed[0].error or ""
        assert "no root file system found" in error
        assert "mount: wrong fs type on /dev/sdc2" in error  # the stderr tail
        assert "register" not in failed[0].steps
        assert sum(vm.status == "succeeded" for vm in report.vms) == 3
        assert_clean(emulator, ["helper-linux"])


async def test_a_windows_vm_without_a_windows_helper_is_prepared_offline_on_the_linux_one(
    backups: Path, tmp_path: Path
) -> None:
    plan = write_plan(tmp_path, backups)
    data = yaml.safe_load(plan.read_text())
    data["vms"] = data["vms"][:2]  # web01 (Linux) and dc01 (Windows)
    data["helpers"] = {"linux": vm_id("helper-linux")}
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=emulated_preparation()
    ) as emulator:
        resolved = await resolve(plan)
        assert [vm.preparation for vm in resolved.vms] == ["linux", "windows-offline"]
        report = await run_plan(emulator, resolved)
        assert report.succeeded, [vm.error for vm in report.vms]
        state = emulator.arm.state()
        assert "helper-windows" not in {vm.name for vm in state.virtual_machines.values()}
        scripts = ["\n".join(c.script) for c in state.run_commands]
        # Both scripts together are over the script budget: one batch each.
        assert len(scripts) == 2 == len(report.batches)
        assert all(c.command_id == "RunShellScript" for c in state.run_commands)
        assert sum("# prepare-windows-offline.sh" in s for s in scripts) == 1
        assert sum("# prepare-linux.sh" in s for s in scripts) == 1
        assert_clean(emulator, ["helper-linux"])


async def test_a_batch_whose_run_command_fails_fails_its_vms(backups: Path, tmp_path: Path) -> None:
    plan = many_vms_plan(tmp_path, backups, 4, {"linux": vm_id("helper-linux")})
    timeout = RunCommandRule(
        script="AZRESTORE-BATCH",
        outcome=RunCommandOutcome(
            error_code="VMExtensionProvisioningError",
            error_message="the command timed out",
            prepares=False,
        ),
    )
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=[timeout, *emulated_preparation()]
    ) as emulator:
        report = await run_plan(emulator, await resolve(plan))
        assert len(report.batches) == 1
        assert {vm.status for vm in report.vms} == {"failed"}
        for vm in report.vms:
            assert vm.error is not None and vm.error.startswith(f"{vm.name}: ")
            assert "VMExtensionProvisioningError" in vm.error
            assert "register" not in vm.steps
        assert_clean(emulator, ["helper-linux"])


async def test_a_second_helper_is_not_started_when_the_first_has_room(
    backups: Path, tmp_path: Path
) -> None:
    helpers = [vm_id("helper-a"), vm_id("helper-b")]
    plan = many_vms_plan(tmp_path, backups, 3, {"linux": helpers})
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=emulated_preparation()
    ) as emulator:
        report = await run_plan(emulator, await resolve(plan))
        assert report.succeeded, [vm.error for vm in report.vms]
        started = [vm for vm, history in report.shared_vms.items() if "started" in history]
        assert [vm.rsplit("/", 1)[-1] for vm in started if "helper" in vm] == [
            report.batches[0]["helper"].rsplit("/", 1)[-1]
        ]
        assert len(report.batches) == 1
        assert_clean(emulator, ["helper-a", "helper-b"])
