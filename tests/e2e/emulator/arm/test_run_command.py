"""Run commands and the guest agent: the helper-appliance flow of a restore (prepare a
restored OS disk on a helper VM, then boot it), an agent that never reports, results as
Azure words them, and one run command at a time."""

from __future__ import annotations

from typing import cast

import pytest
from azure.core.exceptions import HttpResponseError

from azrestore.emulator.arm import RunCommandOutcome, RunCommandRule
from azrestore.emulator.azurite import AzuriteProcess
from tests.support.arm.disks import (
    disk_state,
    upload_disk,
)
from tests.support.arm.env import RG, ArmEnv, arm_env, error_code
from tests.support.arm.network import make_network
from tests.support.arm.vms import (
    SLOW_AGENT,
    WINDOWS,
    agent_status,
    create_vm,
    run_command,
    set_data_disks,
    status_codes,
    vm_attach,
    vm_from_image,
    wait_for_agent,
)

pytestmark = pytest.mark.anyio


async def test_helper_prepares_a_restored_disk_that_then_boots(azurite: AzuriteProcess) -> None:
    async with arm_env(azurite, durations=SLOW_AGENT) as env:
        await _helper_flow(env)


async def _helper_flow(env: ArmEnv) -> None:
    _, helper_nic = await make_network(env, "helper-nic")
    _, target_nic = await make_network(env, "target-nic")
    helper = await create_vm(env, "helper", vm_from_image(helper_nic.id))
    assert helper.properties.provisioning_state == "Succeeded"
    assert helper.properties.storage_profile.image_reference.sku == "22_04-lts-gen2"
    view = await env.compute.virtual_machines.instance_view(RG, "helper")
    assert status_codes(view) == ["ProvisioningState/succeeded", "PowerState/running"]
    assert agent_status(view) == "Ready"  # marketplace images have an agent
    assert view.hyper_v_generation == "V2"
    helper_os = await env.compute.disks.get(RG, helper.properties.storage_profile.os_disk.name)
    assert helper_os.managed_by == helper.id
    assert helper_os.properties is not None
    assert helper_os.properties.disk_state == "Attached"

    restored = await upload_disk(env, "restored-os", generation="V2")
    # An unprepared restored disk boots, but its agent never reports.
    await create_vm(env, "early", vm_attach(target_nic.id, restored.id))
    assert await wait_for_agent(env, "early", within=1.0) == "Not Ready"
    poller = await env.compute.virtual_machines.begin_delete(RG, "early")
    await poller.result()
    assert await disk_state(env, "restored-os") == "Unattached"

    # Attach it to the helper as a data disk, prepare it by run command, detach it.
    updated = await set_data_disks(env, "helper", [restored.id])
    assert [d.managed_disk.id for d in updated.properties.storage_profile.data_disks] == [
        restored.id
    ]
    disk = await env.compute.disks.get(RG, "restored-os")
    assert disk.properties is not None
    assert disk.properties.disk_state == "Attached" and disk.managed_by == helper.id
    result = await run_command(
        env,
        "helper",
        ["set -e", 'prepare-disk --lun "$1"'],
        parameters=[{"name": "lun", "value": "0"}],
    )
    assert result.value[0].code == "ProvisioningState/succeeded"
    assert result.value[0].message == "Enable succeeded: \n[stdout]\n\n[stderr]\n"
    mark = env.sim.state().disk("restored-os").prepared
    assert mark is not None and mark.vm_id == helper.id
    assert mark.script == ("set -e", 'prepare-disk --lun "$1"')
    assert mark.parameters == (("lun", "0"),)
    await set_data_disks(env, "helper", [])
    assert await disk_state(env, "restored-os") == "Unattached"

    target = await create_vm(env, "target", vm_attach(target_nic.id, restored.id))
    assert target.properties.storage_profile.os_disk.os_type == "Linux"
    assert target.properties.storage_profile.os_disk.create_option == "Attach"
    assert "osProfile" not in target.properties.as_dict()
    view = await env.compute.virtual_machines.instance_view(RG, "target")
    assert agent_status(view) == "Not Ready"  # booting: the agent reports some time later
    assert await wait_for_agent(env, "target") == "Ready"
    expanded = await env.compute.virtual_machines.get(RG, "target", expand="instanceView")
    assert expanded.properties is not None
    assert agent_status(expanded.properties.instance_view) == "Ready"

    state = env.sim.state()
    assert [r.script for r in state.run_commands] == [("set -e", 'prepare-disk --lun "$1"')]
    assert state.run_commands[0].prepared_disks == (restored.id,)
    assert state.vm("target").agent_status == "Ready"
    creates = [
        cast(str, e.resource_id).rsplit("/", 1)[-1]
        for e in env.sim.log(polls=False)
        if e.kind == "request" and e.operation == "virtualMachines/write" and e.status == 201
    ]
    assert creates == ["helper", "early", "target"]


async def test_run_command_on_an_unprepared_vm_times_out(azurite: AzuriteProcess) -> None:
    async with arm_env(azurite, durations={"virtualMachines/agentTimeout": 60}) as env:
        _, nic = await make_network(env)
        restored = await upload_disk(env, "raw")
        await create_vm(env, "vm", vm_attach(nic.id, restored.id))
        with pytest.raises(HttpResponseError) as exc:
            await run_command(env, "vm", ["true"])
        assert error_code(exc.value) == "VMAgentStatusCommunicationError"
        assert env.sim.state().run_commands[0].status == "Failed"


async def test_run_command_results_follow_azure(azurite: AzuriteProcess) -> None:
    rules = [
        RunCommandRule(
            script="^echo hello",
            outcome=RunCommandOutcome(stdout="hello\n", stderr="warning\n"),
        ),
        RunCommandRule(script="^exit 3", outcome=RunCommandOutcome(stderr="boom\n", exit_code=3)),
        RunCommandRule(script="^big", outcome=RunCommandOutcome(stdout="x" * 5000 + "END")),
        RunCommandRule(
            script="^broken",
            outcome=RunCommandOutcome(error_code="VMExtensionHandlerNonTransientError"),
        ),
        RunCommandRule(
            command_id="RunPowerShellScript",
            handler=lambda invocation: RunCommandOutcome(
                stdout=f"{invocation.vm_name}:{dict(invocation.parameters)['Disk']}",
                stderr="err",
                exit_code=1,
            ),
        ),
    ]
    async with arm_env(azurite, run_command_rules=rules) as env:
        _, nic = await make_network(env, "linux-nic")
        _, win_nic = await make_network(env, "win-nic")
        await create_vm(env, "linux", vm_from_image(nic.id))
        await create_vm(env, "win", vm_from_image(win_nic.id, WINDOWS))

        result = await run_command(env, "linux", ["echo hello"])
        assert result.value[0].message == (
            "Enable succeeded: \n[stdout]\nhello\n\n[stderr]\nwarning\n"
        )
        with pytest.raises(HttpResponseError) as exc:
            await run_command(env, "linux", ["exit 3"])
        assert error_code(exc.value) == "VMExtensionProvisioningError"
        assert "exit status=3" in str(exc.value.message) and "boom" in str(exc.value.message)
        big = await run_command(env, "linux", ["big"])
        stdout = big.value[0].message.split("[stdout]\n", 1)[1].split("\n[stderr]", 1)[0]
        assert len(stdout) == 4096 and stdout.endswith("END")
        with pytest.raises(HttpResponseError) as exc:
            await run_command(env, "linux", ["broken"])
        assert error_code(exc.value) == "VMExtensionHandlerNonTransientError"

        # Windows: stdout and stderr as two statuses, and a non-zero exit does not fail it.
        result = await run_command(
            env,
            "win",
            ["Get-Disk"],
            command_id="RunPowerShellScript",
            parameters=[{"name": "Disk", "value": "2"}],
        )
        assert [(s.code, s.message) for s in result.value] == [
            ("ComponentStatus/StdOut/succeeded", "win:2"),
            ("ComponentStatus/StdErr/succeeded", "err"),
        ]
        with pytest.raises(HttpResponseError) as exc:
            await run_command(env, "win", ["ls"])  # RunShellScript on Windows
        assert exc.value.status_code == 400 and error_code(exc.value) == "InvalidParameter"
        outcomes = [(r.command_id, r.status, r.exit_code) for r in env.sim.state().run_commands]
        assert outcomes == [
            ("RunShellScript", "Succeeded", 0),
            ("RunShellScript", "Failed", 3),
            ("RunShellScript", "Succeeded", 0),
            ("RunShellScript", "Failed", 0),
            ("RunPowerShellScript", "Succeeded", 1),
        ]


async def test_one_run_command_at_a_time(azurite: AzuriteProcess) -> None:
    rules = [RunCommandRule(script="slow", duration=100)]
    async with arm_env(azurite, run_command_rules=rules) as env:
        _, nic = await make_network(env)
        await create_vm(env, "vm", vm_from_image(nic.id))
        poller = await env.compute.virtual_machines.begin_run_command(
            RG, "vm", {"commandId": "RunShellScript", "script": ["slow"]}
        )
        with pytest.raises(HttpResponseError) as exc:
            await env.compute.virtual_machines.begin_run_command(
                RG, "vm", {"commandId": "RunShellScript", "script": ["fast"]}
            )
        assert exc.value.status_code == 409 and error_code(exc.value) == "Conflict"
        assert "Run command extension execution is in progress" in str(exc.value.message)
        await poller.result()
        await run_command(env, "vm", ["fast"])
