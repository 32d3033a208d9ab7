"""Restores under faults, cancellation and load, judged from the emulator's log."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import pytest
import yaml
from azure.storage.blob import BlobClient

from azrestore.azure.arm import ArmSettings
from azrestore.azure.controlplane import ControlPlane
from azrestore.cli.restore import RestoreView
from azrestore.emulator import ArmFaultRule, Emulator, RunCommandOutcome, RunCommandRule
from azrestore.formats.vhd import VhdFooter
from azrestore.jobs.emulated import bootstrap_emulator, emulated_preparation
from azrestore.restore.run import RestoreRun
from azrestore.restore.settings import RestoreSettings
from azrestore.transfer.config import TransferConfig
from tests.support.disks import needs_tools
from tests.support.images import expected_vhd_body
from tests.support.restore import TIME_FACTOR, resolve, run_plan, write_plan

pytestmark = [pytest.mark.anyio, needs_tools]

#: The order of one VM's chain, as operations in the simulator's log.
CHAIN = [
    "disks/write",
    "disks/beginGetAccess",
    "disks/endGetAccess",
    "virtualMachines/write",  # attach to the helper
    "virtualMachines/start",  # the helper
    "virtualMachines/runCommand",
    "virtualMachines/write",  # detach from the helper
    "disks/update",  # the azrestore-prepared tag
    "networkInterfaces/write",
    "virtualMachines/write",  # register the VM
]


def chain_of(emulator: Emulator, vm: str, helper: str) -> list[str]:
    """The operations of ``vm``'s chain that succeeded, in the order they ended.

    Helper updates and run commands are told apart by which disk they carry: the run
    command and attach/detach on the helper that happened between this VM's upload and
    its registration, in log order."""
    names: list[str] = []
    for entry in emulator.arm.log(polls=False):
        if entry.kind != "operation" or entry.outcome != "Succeeded":
            continue
        rid = (entry.resource_id or "").lower()
        mine = f"/disks/{vm}-osdisk" in rid or rid.endswith(f"/virtualmachines/{vm}")
        mine = mine or rid.endswith(f"/networkinterfaces/{vm}-nic")
        # The helper is deallocated once its last VM is prepared: that races the chain.
        on_helper = rid.endswith(f"/virtualmachines/{helper}")
        on_helper = on_helper and entry.operation != "virtualMachines/deallocate"
        if mine or (on_helper and names and "networkInterfaces/write" not in names):
            names.append(entry.operation)
    return names


async def test_chain_order_and_bytes_in_storage(backups: Path, tmp_path: Path) -> None:
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=emulated_preparation()
    ) as emulator:
        plan = write_plan(tmp_path, backups)
        data = yaml.safe_load(plan.read_text())
        data["vms"] = data["vms"][:1]  # web01 alone, so the helper's log is its own
        plan.write_text(yaml.safe_dump(data, sort_keys=False))
        report = await run_plan(emulator, await resolve(plan))
        assert report.vms[0].status == "succeeded", report.vms[0].error
        chain = chain_of(emulator, "web01", "helper-linux")
        assert chain == CHAIN
        # The bytes in storage are the image, its padding and a valid footer.
        state = emulator.arm.state()
        disk = state.disk("web01-osdisk")
        assert disk.blob_path is not None
        container, blob = disk.blob_path.strip("/").split("/", 1)
        with BlobClient.from_connection_string(
            emulator.azurite.connection_string, container, blob
        ) as client:
            stored = client.download_blob().readall()
        body = expected_vhd_body(backups / "web01-os.raw")
        assert stored[:-512] == body
        assert VhdFooter.parse(stored[-512:]).current_size == len(body)


async def test_arm_faults_and_a_failing_run_command(backups: Path, tmp_path: Path) -> None:
    faults = [
        ArmFaultRule.from_spec("operations/poll:status=429,retry_after=0.01,rate=0.1,seed=5"),
        ArmFaultRule.from_spec("operations/poll:status=503,rate=0.1,seed=9"),
        ArmFaultRule.from_spec("disks/write:status=500,nth=1"),
        ArmFaultRule.from_spec("virtualMachines/write:status=429,retry_after=0.01,nth=2"),
    ]
    failing = RunCommandRule(
        script=r"\$Lun\b",  # the PowerShell script's parameter (not in base64: "$")
        outcome=RunCommandOutcome(error_code="VMExtensionProvisioningError", prepares=False),
    )
    async with Emulator(
        time_factor=TIME_FACTOR,
        arm_rules=faults,
        run_command_rules=[failing, *emulated_preparation()],
    ) as emulator:
        report = await run_plan(emulator, await resolve(write_plan(tmp_path, backups)))
        status = {vm.name: vm.status for vm in report.vms}
        assert status == {"web01": "succeeded", "dc01": "failed", "db01": "succeeded"}
        assert any(entry.fault for entry in emulator.arm.log())
        state = emulator.arm.state()
        assert state.vm("azproxy").power_state == "deallocated"
        assert state.vm("helper-windows").power_state == "deallocated"
        assert state.vm("web01").agent_status == "Ready"


async def test_cancelling_midway_leaves_nothing_running(backups: Path, tmp_path: Path) -> None:
    async with Emulator(time_factor=0.01, run_command_rules=emulated_preparation()) as emulator:
        resolved = await resolve(write_plan(tmp_path, backups))
        settings = ArmSettings.from_env({k: str(v) for k, v in emulator.info()["env"].items()})
        reached = anyio.Event()

        class Watch(RestoreView):
            def step(self, vm: str, step: str) -> None:
                super().step(vm, step)
                if step == "prepare":
                    reached.set()

        async with ControlPlane(settings) as control:
            await bootstrap_emulator(control, resolved)
            run = RestoreRun(
                resolved,
                control,
                config=TransferConfig(concurrency=2),
                settings=RestoreSettings(agent_timeout=30, agent_poll_interval=0.05),
                observer=Watch(None),
            )
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(run.run)
                await reached.wait()
                tasks.cancel_scope.cancel()
        await emulator.arm.wait_idle()
        state = emulator.arm.state()
        for shared in ("azproxy", "helper-linux", "helper-windows"):
            assert state.vm(shared).power_state == "deallocated", shared
        assert all(d.disk_state not in ("ActiveUpload", "ActiveSAS") for d in state.disks.values())


async def test_ten_vms_overlap(backups: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    vms = []
    for index in range(10):
        image = images / f"vm{index}-os.raw"
        shutil.copyfile(backups / "db01-os.raw", image)
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
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    async with Emulator(
        time_factor=TIME_FACTOR, run_command_rules=emulated_preparation()
    ) as emulator:
        report = await run_plan(emulator, await resolve(plan))
        assert all(vm.status == "succeeded" for vm in report.vms), [v.error for v in report.vms]
        # The helper (Standard_B2s: 4 data disks) prepares them in batches of at most 4:
        # per batch one attach update, one run command, one detach update.
        assert all(len(batch["vms"]) <= 4 for batch in report.batches)
        assert sorted(v for b in report.batches for v in b["vms"]) == sorted(
            str(vm["name"]) for vm in vms
        )
        helper = [
            entry.operation
            for entry in emulator.arm.log(polls=False)
            if entry.kind == "operation"
            and entry.outcome == "Succeeded"
            and (entry.resource_id or "").endswith("/virtualMachines/helper-linux")
        ]
        assert helper.count("virtualMachines/runCommand") == len(report.batches) < 10
        assert helper.count("virtualMachines/write") == 1 + 2 * len(report.batches)
        spans = []
        first = last = None
        for vm in vms:
            name = str(vm["name"])
            times = [
                entry.elapsed
                for entry in emulator.arm.log(polls=False)
                if name in (entry.resource_id or "").rsplit("/", 1)[-1]
                and (entry.resource_id or "").rsplit("/", 1)[-1].startswith(name)
            ]
            spans.append(max(times) - min(times))
            first = min(times) if first is None else min(first, min(times))
            last = max(times) if last is None else max(last, max(times))
        assert first is not None and last is not None
        # The simulator's clock (elapsed / time factor) scales both sides alike.
        total = last - first
        assert total < 0.5 * sum(spans), (total, spans)
