"""Run commands of a Linux VM run for real (scripts mode ``run``): the script sees its data
disks and its output is its own, and the prepared mark follows the emulator's inspection,
not the run's success; where the machine cannot, ``auto`` records (saying why once) and
``run`` refuses."""

from __future__ import annotations

import logging

import pytest
from azure.core.exceptions import HttpResponseError

from azrestore.emulator.azurite import AzuriteProcess
from azrestore.emulator.guest import availability
from tests.support.arm.disks import upload_disk
from tests.support.arm.env import ArmEnv, arm_env, error_code
from tests.support.arm.network import make_network
from tests.support.arm.vms import (
    create_vm,
    run_command,
    set_data_disks,
    vm_attach,
    vm_from_image,
    wait_for_agent,
)
from tests.support.guestimages import require_sandbox

pytestmark = pytest.mark.anyio


async def _helper_with_disk(env: ArmEnv) -> str:
    """A running helper with a restored (all-zero) disk at LUN 0; the disk's id."""
    _, nic = await make_network(env, "helper-nic")
    await create_vm(env, "helper", vm_from_image(nic.id))
    restored = await upload_disk(env, "restored-os", generation="V2")
    await set_data_disks(env, "helper", [restored.id])
    return str(restored.id)


async def test_a_script_that_runs_for_real_prepares_only_what_it_made_bootable(
    azurite: AzuriteProcess,
) -> None:
    require_sandbox()
    async with arm_env(azurite, scripts="run") as env:
        restored = await _helper_with_disk(env)
        result = await run_command(
            env,
            "helper",
            ['[ -b "/dev/disk/azure/scsi1/lun$LUN" ] && echo "block device at LUN $LUN"'],
            parameters=[{"name": "LUN", "value": "0"}],
        )
        assert result.value[0].message == (
            "Enable succeeded: \n[stdout]\nblock device at LUN 0\n\n[stderr]\n"
        )
        state = env.sim.state()
        assert state.run_commands[-1].ran
        # The script succeeded, but the disk holds no OS: no prepared mark, no agent.
        assert state.disk("restored-os").prepared is None
        assert state.run_commands[-1].prepared_disks == ()
        with pytest.raises(HttpResponseError) as failed:
            await run_command(env, "helper", ["echo bad >&2", "exit 3"])
        assert error_code(failed.value) == "VMExtensionProvisioningError"
        assert "exit status=3" in str(failed.value) and "bad" in str(failed.value)
        await set_data_disks(env, "helper", [])
        _, nic = await make_network(env, "target-nic")
        await create_vm(env, "target", vm_attach(nic.id, restored))
        assert await wait_for_agent(env, "target", within=1.0) == "Not Ready"


async def test_auto_records_where_scripts_cannot_run_and_says_why_once(
    azurite: AzuriteProcess, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(availability, "sandbox_unavailable", lambda: "no loop devices (test)")
    async with arm_env(azurite, scripts="auto") as env:
        await _helper_with_disk(env)
        with caplog.at_level(logging.WARNING, logger="azrestore.emulator"):
            for _ in range(2):
                await run_command(env, "helper", ["exit 0"])
        state = env.sim.state()
        assert not any(rc.ran for rc in state.run_commands)
        assert state.disk("restored-os").prepared is not None  # recorded, as before
        warnings = [r.getMessage() for r in caplog.records if "recorded" in r.getMessage()]
        assert warnings == ["guest scripts are recorded, not run: no loop devices (test)"]


async def test_run_refuses_where_scripts_cannot_run(
    azurite: AzuriteProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(availability, "sandbox_unavailable", lambda: "not root (test)")
    async with arm_env(azurite, scripts="run") as env:
        await _helper_with_disk(env)
        with pytest.raises(HttpResponseError) as failed:
            await run_command(env, "helper", ["exit 0"])
        assert error_code(failed.value) == "InternalExecutionError"
        assert "not root (test)" in str(failed.value)
