"""A restore that is interrupted continues when run again: each VM from the step it
reached (local Azure: the Resource Manager simulator, the strict gateway, Azurite).

Judged from outside: disk states through azure-mgmt-compute, disk bytes read back from
Azurite with the storage SDK and compared with the images, run commands and power states
from the simulator's own state.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from azrestore.azure.arm import ArmSettings
from azrestore.azure.controlplane import ControlPlane
from azrestore.cli.restore import RestoreView
from azrestore.emulator import Emulator
from azrestore.emulator.arm.faults import ArmFaultRule
from azrestore.jobs.emulated import bootstrap_emulator, emulated_preparation
from azrestore.restore.outcome import RestoreReport
from azrestore.restore.run import RestoreRun
from azrestore.restore.settings import RestoreSettings
from azrestore.transfer.config import TransferConfig
from tests.support.disks import needs_tools
from tests.support.restore import TIME_FACTOR, resolve
from tests.support.restoreruns import (
    arm_env,
    assert_restored,
    dense_copy,
    disk_state,
    journal_records,
    plan_with_bandwidth,
    run_restore_command,
)

pytestmark = [pytest.mark.anyio, needs_tools]


@pytest.fixture(scope="module")
def dense(backups: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dense_copy(backups, tmp_path_factory.mktemp("dense"))


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=emulated_preparation()
    ) as local_azure:
        yield local_azure


class _Reports(RestoreView):
    def __init__(self) -> None:
        super().__init__(None)
        self.reports: list[RestoreReport] = []

    def finished(self, report: RestoreReport) -> None:
        super().finished(report)
        self.reports.append(report)


async def _run(
    emulator: Emulator,
    plan: Path,
    journals: Path | None,
    observer: RestoreView | None = None,
    *,
    restart: bool = False,
) -> RestoreReport:
    resolved = await resolve(plan)
    async with ControlPlane(ArmSettings.from_env(arm_env(emulator))) as control:
        await bootstrap_emulator(control, resolved)
        run = RestoreRun(
            resolved,
            control,
            config=TransferConfig(
                concurrency=2,
                chunk_size=1024 * 1024,
                max_bandwidth=resolved.plan.transfer.max_bandwidth,
            ),
            settings=RestoreSettings(
                agent_timeout=30, agent_poll_interval=0.05, journal_dir=journals, restart=restart
            ),
            observer=observer or RestoreView(None),
        )
        return await run.run()


async def _interrupted(emulator: Emulator, plan: Path, journals: Path | None) -> RestoreReport:
    """Run the plan until a few chunks are acknowledged, then cancel it (as Ctrl-C does);
    the report the run gave its observer on the way out."""
    observer = _Reports()
    with anyio.move_on_after(60):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_run, emulator, plan, journals, observer)
            while not _uploading(observer):  # noqa: ASYNC110 (the observer's numbers)
                await anyio.sleep(0.02)
            tasks.cancel_scope.cancel()
    assert observer.reports, "the interrupted run gave no report"
    return observer.reports[-1]


def _uploading(view: RestoreView) -> bool:
    return sum(1 for row in view.disks.values() if row.sent >= 2 * 1024 * 1024) >= 2


async def test_cancelled_restore_reports_open_disks_and_continues(
    emulator: Emulator, dense: Path, tmp_path: Path
) -> None:
    plan = plan_with_bandwidth(tmp_path, dense, "6MiB")
    journals = tmp_path / "journals"
    report = await _interrupted(emulator, plan, journals)
    assert report.interrupted
    assert {vm.status for vm in report.vms} == {"interrupted"}
    left = report.left_open()
    assert left, report.to_json()
    for disk_id, why in left:
        assert await disk_state(emulator, disk_id) == "ActiveUpload"
        assert "run the same command again" in why

    again = await _run(emulator, plan, journals)
    assert again.succeeded, [vm.error for vm in again.vms]
    await assert_restored(emulator, dense, again)
    # Only what the journals lacked was sent again: less than the disks' data.
    resolved = await resolve(plan)
    data = sum(disk.report.allocated_bytes for vm in resolved.vms for disk in vm.disks)
    resent = sum(d.bytes_uploaded for vm in again.vms for d in vm.disks)
    assert 0 < resent < data


async def test_open_disk_without_a_journal_fails_its_vm_until_restart(
    emulator: Emulator, dense: Path, tmp_path: Path
) -> None:
    plan = plan_with_bandwidth(tmp_path, dense, "6MiB")
    report = await _interrupted(emulator, plan, tmp_path / "journals")
    open_disks = [disk_id for disk_id, _ in report.left_open()]
    assert open_disks
    # Another journal folder (another machine): nothing there says the disks may go on.
    refused = await _run(emulator, plan, tmp_path / "elsewhere")
    failed = {vm.name: vm.error or "" for vm in refused.vms if vm.status == "failed"}
    assert failed, refused.to_json()
    assert all("open for upload" in error and "--restart" in error for error in failed.values())
    for disk_id in open_disks:
        assert await disk_state(emulator, disk_id) == "ActiveUpload"  # nothing written
    restarted = await _run(emulator, plan, tmp_path / "elsewhere", restart=True)
    assert restarted.succeeded, [vm.error for vm in restarted.vms]
    await assert_restored(emulator, dense, restarted)


async def test_a_vm_prepared_before_the_interruption_is_not_prepared_again(
    emulator: Emulator, dense: Path, tmp_path: Path
) -> None:
    plan = plan_with_bandwidth(tmp_path, dense, None)
    # Registration fails once for every VM: their disks are uploaded and prepared.
    emulator.arm.add_rule(
        ArmFaultRule(
            operation="virtualMachines/write",
            status=400,
            code="InvalidParameter",
            path=r"/virtualMachines/(web01|dc01|db01)$",
            times=3,
        )
    )
    first = await _run(emulator, plan, tmp_path / "journals")
    assert {vm.status for vm in first.vms} == {"failed"}
    prepared_runs = len(emulator.arm.state().run_commands)
    # One run command per batch (web01 and db01 may share the Linux helper's).
    assert prepared_runs == len(first.batches)
    assert sorted(vm for batch in first.batches for vm in batch["vms"]) == ["db01", "dc01", "web01"]

    again = await _run(emulator, plan, tmp_path / "journals")
    assert again.succeeded, [vm.error for vm in again.vms]
    assert len(emulator.arm.state().run_commands) == prepared_runs  # none prepared twice
    for vm in again.vms:
        assert vm.steps[:2] == ["upload", "register"], vm.steps
        assert all(disk.reused for disk in vm.disks)
    await assert_restored(emulator, dense, again)


async def test_cli_restore_sigint_prints_the_report_and_the_same_command_continues(
    emulator: Emulator, dense: Path, tmp_path: Path
) -> None:
    plan = plan_with_bandwidth(tmp_path, dense, "4MiB")
    journals = tmp_path / "journals"
    resolved = await resolve(plan)
    async with ControlPlane(ArmSettings.from_env(arm_env(emulator))) as control:
        await bootstrap_emulator(control, resolved)
    code, out, err = await run_restore_command(
        emulator, plan, journals, stop=signal.SIGINT, when=lambda: journal_records(journals) >= 4
    )
    assert code == 130, err
    report: dict[str, Any] = json.loads(out)
    assert report["interrupted"] is True
    assert report["left_open"], report
    for entry in report["left_open"]:
        assert await disk_state(emulator, entry["disk_id"]) == "ActiveUpload"
    lines = err.strip().splitlines()
    assert lines[-1].startswith("azrestore: error: interrupted:"), err
    assert "left open for upload" in lines[-1]

    code, out, err = await run_restore_command(emulator, plan, journals)
    assert code == 0, err
    final = json.loads(out)
    assert not final["interrupted"] and not final["left_open"]
    assert {vm["status"] for vm in final["vms"]} == {"succeeded"}
    assert sum(d["bytes_uploaded"] for vm in final["vms"] for d in vm["disks"]) > 0
