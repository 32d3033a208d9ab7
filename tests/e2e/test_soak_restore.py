"""Soak: ``azrestore restore PLAN`` of three VMs with managed disks, interrupted ten times
at seeded random moments (SIGINT and SIGKILL mixed), the same command each time; then
once more to the end. Every VM must end restored, every disk identical to its image, no
disk left open for upload, the helpers and the proxy deallocated.

Judged from outside: the simulator's state, disk states through azure-mgmt-compute, and
disk bytes read back from Azurite with the storage SDK.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from azrestore.azure.arm import ArmSettings
from azrestore.azure.controlplane import ControlPlane
from azrestore.emulator import Emulator
from azrestore.jobs.emulated import bootstrap_emulator, emulated_preparation
from azrestore.restore.outcome import RestoredDisk, RestoreReport, VmOutcome
from tests.support.disks import needs_tools
from tests.support.restore import TIME_FACTOR, resolve
from tests.support.restoreruns import (
    arm_env,
    assert_restored,
    dense_copy,
    plan_with_bandwidth,
    run_restore_command,
    signal_name,
)

pytestmark = [pytest.mark.anyio, needs_tools]

SEED = 20261203
INTERRUPTIONS = 10


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=emulated_preparation()
    ) as local_azure:
        yield local_azure


def _report(data: dict[str, object], plan_vms: list[str]) -> RestoreReport:
    """The final run's JSON report as the checks read it."""
    vms = []
    for vm in data["vms"]:  # type: ignore[attr-defined]
        outcome = VmOutcome(vm["name"], vm["os"], vm["generation"], status=vm["status"])
        outcome.disks = [
            RestoredDisk(d["path"], d["role"], d["lun"], d["disk_id"]) for d in vm["disks"]
        ]
        vms.append(outcome)
    assert [vm.name for vm in vms] == plan_vms
    return RestoreReport(vms, [], 0.0)


async def test_restore_interrupted_ten_times_ends_identical(
    emulator: Emulator, backups: Path, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    images = dense_copy(backups, tmp_path / "images", seed=SEED)
    plan = plan_with_bandwidth(tmp_path, images, "3MiB")
    journals = tmp_path / "journals"
    resolved = await resolve(plan)
    async with ControlPlane(ArmSettings.from_env(arm_env(emulator))) as control:
        await bootstrap_emulator(control, resolved)
    signals = [signal.SIGINT] * (INTERRUPTIONS // 2) + [signal.SIGKILL] * (INTERRUPTIONS // 2)
    rng.shuffle(signals)
    history: list[str] = []
    for run, how in enumerate(signals):
        delay = rng.uniform(1.2, 3.0)  # the command starts in about a second
        deadline = time.monotonic() + delay

        def due(deadline: float = deadline) -> bool:
            return time.monotonic() >= deadline

        code, out, err = await run_restore_command(emulator, plan, journals, stop=how, when=due)
        history.append(f"run {run}: {how.name} after {delay:.2f} s -> {signal_name(code)}")
        context = f"seed {SEED}; {'; '.join(history)}\nstdout: {out[-1500:]}\nstderr: {err[-2000:]}"
        assert code != 0, f"finished before interruption {run}: slow it down; {context}"
        if how is signal.SIGINT:
            assert code == 130, context
            assert json.loads(out)["interrupted"] is True, context
        else:
            assert code == -signal.SIGKILL, context
    code, out, err = await run_restore_command(emulator, plan, journals)
    context = f"seed {SEED}; {'; '.join(history)}\nstdout: {out[-1500:]}\nstderr: {err[-2000:]}"
    assert code == 0, context
    final = json.loads(out)
    assert not final["left_open"], context
    report = _report(final, [vm.name for vm in resolved.vms])
    assert {vm.status for vm in report.vms} == {"succeeded"}, context
    await assert_restored(emulator, images, report)
    print("\n".join(history))
