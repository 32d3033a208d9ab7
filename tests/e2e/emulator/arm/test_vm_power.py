"""The VM power state machine: a full power cycle, and a start that fails."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from azrestore.emulator.arm import ArmFaultRule
from azrestore.emulator.azurite import AzuriteProcess
from tests.support.arm.disks import (
    disk_state,
    upload_disk,
)
from tests.support.arm.env import RG, ArmEnv, arm_env, error_code
from tests.support.arm.network import make_network
from tests.support.arm.vms import (
    SLOW_POWER,
    create_vm,
    set_data_disks,
    status_codes,
    vm_from_image,
    wait_for_agent,
)

pytestmark = pytest.mark.anyio


async def test_power_cycle(azurite: AzuriteProcess) -> None:
    async with arm_env(azurite, durations=SLOW_POWER) as env:
        await _power_cycle(env)


async def _power_cycle(env: ArmEnv) -> None:
    _, nic = await make_network(env)
    vm = await create_vm(env, "vm", vm_from_image(nic.id))
    data = await upload_disk(env, "data", os_type=None)
    await set_data_disks(env, "vm", [data.id])

    async def power() -> str:
        view = await env.compute.virtual_machines.instance_view(RG, "vm")
        return status_codes(view)[1]

    poller = await env.compute.virtual_machines.begin_deallocate(RG, "vm")
    assert await power() == "PowerState/deallocating"
    await poller.result()
    assert await power() == "PowerState/deallocated"
    assert await disk_state(env, "data") == "Reserved"
    view = await env.compute.virtual_machines.instance_view(RG, "vm")
    assert view.vm_agent is None
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.virtual_machines.begin_restart(RG, "vm")
    assert exc.value.status_code == 409 and error_code(exc.value) == "OperationNotAllowed"
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.virtual_machines.begin_run_command(
            RG, "vm", {"commandId": "RunShellScript", "script": ["true"]}
        )
    assert "requires the VM to be running" in str(exc.value.message)

    poller = await env.compute.virtual_machines.begin_start(RG, "vm")
    assert await power() == "PowerState/starting"
    await poller.result()
    assert await power() == "PowerState/running"
    assert await disk_state(env, "data") == "Attached"
    assert await wait_for_agent(env, "vm") == "Ready"

    poller = await env.compute.virtual_machines.begin_power_off(RG, "vm")
    await poller.result()
    assert await power() == "PowerState/stopped"
    assert await disk_state(env, "data") == "Attached"
    poller = await env.compute.virtual_machines.begin_start(RG, "vm")
    await poller.result()
    poller = await env.compute.virtual_machines.begin_restart(RG, "vm")
    await poller.result()
    assert await power() == "PowerState/running"
    operations = [
        e.operation.split("/")[1]
        for e in env.sim.log(polls=False)
        if e.kind == "operation" and e.resource_id == vm.id
    ]
    assert operations == ["write", "write", "deallocate", "start", "powerOff", "start", "restart"]


async def test_failed_start_leaves_the_vm_deallocated(azurite: AzuriteProcess) -> None:
    rules = [ArmFaultRule.from_spec("virtualMachines/start:fail,code=AllocationFailed,times=1")]
    async with arm_env(azurite, rules=rules) as env:
        _, nic = await make_network(env)
        await create_vm(env, "vm", vm_from_image(nic.id))
        poller = await env.compute.virtual_machines.begin_deallocate(RG, "vm")
        await poller.result()
        poller = await env.compute.virtual_machines.begin_start(RG, "vm")
        with pytest.raises(HttpResponseError) as exc:
            await poller.result()
        assert error_code(exc.value) == "AllocationFailed"
        vm = await env.compute.virtual_machines.get(RG, "vm", expand="instanceView")
        assert vm.properties is not None
        assert vm.properties.provisioning_state == "Failed"
        codes = status_codes(vm.properties.instance_view)
        assert codes == ["ProvisioningState/failed/AllocationFailed", "PowerState/deallocated"]
        poller = await env.compute.virtual_machines.begin_start(RG, "vm")
        await poller.result()
        assert env.sim.state().vm("vm").power_state == "running"
