"""Virtual machines, run commands and the network through the real azure-mgmt-compute and
azure-mgmt-network aio clients: the helper-appliance flow of a restore (prepare a restored OS
disk on a helper VM, then boot it), power states, guest agent, validation and conflicts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from azrestore.emulator.arm import ArmFaultRule, RunCommandOutcome, RunCommandRule
from azrestore.emulator.azurite import AzuriteProcess
from tests.support.arm import (
    LOCATION,
    RG,
    WINDOWS,
    ArmEnv,
    agent_status,
    arm_env,
    make_network,
    status_codes,
    upload_disk,
    vm_attach,
    vm_from_image,
)

pytestmark = pytest.mark.anyio

# Tests that look at a transient state (booting, deallocating) stretch that phase so a slow
# machine still sees it.
SLOW_AGENT = {"virtualMachines/agentReady": 100.0}
SLOW_POWER = {"virtualMachines/start": 100.0, "virtualMachines/deallocate": 100.0}


@pytest.fixture
async def env(azurite: AzuriteProcess) -> AsyncIterator[ArmEnv]:
    async with arm_env(azurite) as environment:
        yield environment


def error_code(exc: HttpResponseError) -> str | None:
    return exc.error.code if exc.error is not None else None


async def create_vm(env: ArmEnv, name: str, body: dict[str, Any]) -> Any:
    poller = await env.compute.virtual_machines.begin_create_or_update(RG, name, body)
    return await poller.result()


async def run(env: ArmEnv, vm: str, script: list[str], **extra: Any) -> Any:
    body = {"commandId": extra.pop("command_id", "RunShellScript"), "script": script, **extra}
    poller = await env.compute.virtual_machines.begin_run_command(RG, vm, body)
    return await poller.result()


async def set_data_disks(env: ArmEnv, vm_name: str, disk_ids: list[str]) -> Any:
    vm = await env.compute.virtual_machines.get(RG, vm_name)
    vm.properties.storage_profile.data_disks = [
        {"lun": lun, "createOption": "Attach", "managedDisk": {"id": disk_id}}
        for lun, disk_id in enumerate(disk_ids)
    ]
    poller = await env.compute.virtual_machines.begin_create_or_update(RG, vm_name, vm)
    return await poller.result()


async def wait_for_agent(env: ArmEnv, vm_name: str, within: float = 3.0) -> str | None:
    status: str | None = None
    with anyio.move_on_after(within):
        while True:
            view = await env.compute.virtual_machines.instance_view(RG, vm_name)
            status = agent_status(view)
            if status == "Ready":
                break
            await anyio.sleep(0.05)
    return status


# -- the restore flow -------------------------------------------------------------------------


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
    assert helper_os.properties.disk_state == "Attached"

    restored = await upload_disk(env, "restored-os", generation="V2")
    # An unprepared restored disk boots, but its agent never reports.
    await create_vm(env, "early", vm_attach(target_nic.id, restored.id))
    assert await wait_for_agent(env, "early", within=1.0) == "Not Ready"
    poller = await env.compute.virtual_machines.begin_delete(RG, "early")
    await poller.result()
    assert (await env.compute.disks.get(RG, "restored-os")).properties.disk_state == "Unattached"

    # Attach it to the helper as a data disk, prepare it by run command, detach it.
    updated = await set_data_disks(env, "helper", [restored.id])
    assert [d.managed_disk.id for d in updated.properties.storage_profile.data_disks] == [
        restored.id
    ]
    disk = await env.compute.disks.get(RG, "restored-os")
    assert disk.properties.disk_state == "Attached" and disk.managed_by == helper.id
    result = await run(
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
    assert (await env.compute.disks.get(RG, "restored-os")).properties.disk_state == "Unattached"

    target = await create_vm(env, "target", vm_attach(target_nic.id, restored.id))
    assert target.properties.storage_profile.os_disk.os_type == "Linux"
    assert target.properties.storage_profile.os_disk.create_option == "Attach"
    assert "osProfile" not in target.properties.as_dict()
    view = await env.compute.virtual_machines.instance_view(RG, "target")
    assert agent_status(view) == "Not Ready"  # booting: the agent reports some time later
    assert await wait_for_agent(env, "target") == "Ready"
    expanded = await env.compute.virtual_machines.get(RG, "target", expand="instanceView")
    assert agent_status(expanded.properties.instance_view) == "Ready"

    state = env.sim.state()
    assert [r.script for r in state.run_commands] == [("set -e", 'prepare-disk --lun "$1"')]
    assert state.run_commands[0].prepared_disks == (restored.id,)
    assert state.vm("target").agent_status == "Ready"
    creates = [
        e.resource_id.rsplit("/", 1)[-1]
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
            await run(env, "vm", ["true"])
        assert error_code(exc.value) == "VMAgentStatusCommunicationError"
        assert env.sim.state().run_commands[0].status == "Failed"


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
    assert (await env.compute.disks.get(RG, "data")).properties.disk_state == "Reserved"
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
    assert (await env.compute.disks.get(RG, "data")).properties.disk_state == "Attached"
    assert await wait_for_agent(env, "vm") == "Ready"

    poller = await env.compute.virtual_machines.begin_power_off(RG, "vm")
    await poller.result()
    assert await power() == "PowerState/stopped"
    assert (await env.compute.disks.get(RG, "data")).properties.disk_state == "Attached"
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
        assert vm.properties.provisioning_state == "Failed"
        codes = status_codes(vm.properties.instance_view)
        assert codes == ["ProvisioningState/failed/AllocationFailed", "PowerState/deallocated"]
        poller = await env.compute.virtual_machines.begin_start(RG, "vm")
        await poller.result()
        assert env.sim.state().vm("vm").power_state == "running"


# -- run commands -----------------------------------------------------------------------------


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

        result = await run(env, "linux", ["echo hello"])
        assert result.value[0].message == (
            "Enable succeeded: \n[stdout]\nhello\n\n[stderr]\nwarning\n"
        )
        with pytest.raises(HttpResponseError) as exc:
            await run(env, "linux", ["exit 3"])
        assert error_code(exc.value) == "VMExtensionProvisioningError"
        assert "exit status=3" in str(exc.value.message) and "boom" in str(exc.value.message)
        big = await run(env, "linux", ["big"])
        stdout = big.value[0].message.split("[stdout]\n", 1)[1].split("\n[stderr]", 1)[0]
        assert len(stdout) == 4096 and stdout.endswith("END")
        with pytest.raises(HttpResponseError) as exc:
            await run(env, "linux", ["broken"])
        assert error_code(exc.value) == "VMExtensionHandlerNonTransientError"

        # Windows: stdout and stderr as two statuses, and a non-zero exit does not fail it.
        result = await run(
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
            await run(env, "win", ["ls"])  # RunShellScript on Windows
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
        await run(env, "vm", ["fast"])


# -- updates and validation -------------------------------------------------------------------


async def test_concurrent_updates_of_one_vm_conflict(azurite: AzuriteProcess) -> None:
    async with arm_env(azurite, durations={"virtualMachines/write": 100}) as env:
        _, nic = await make_network(env)
        await create_vm(env, "vm", vm_from_image(nic.id))
        first = await upload_disk(env, "first", os_type=None)
        second = await upload_disk(env, "second", os_type=None)
        vm = await env.compute.virtual_machines.get(RG, "vm")
        vm.properties.storage_profile.data_disks = [
            {"lun": 0, "createOption": "Attach", "managedDisk": {"id": first.id}}
        ]
        poller = await env.compute.virtual_machines.begin_create_or_update(RG, "vm", vm)
        assert (await env.compute.disks.get(RG, "first")).managed_by == vm.id
        vm.properties.storage_profile.data_disks = [
            {"lun": 1, "createOption": "Attach", "managedDisk": {"id": second.id}}
        ]
        with pytest.raises(HttpResponseError) as exc:
            await env.compute.virtual_machines.begin_create_or_update(RG, "vm", vm)
        assert exc.value.status_code == 409 and error_code(exc.value) == "Conflict"
        with pytest.raises(HttpResponseError) as exc:
            await env.compute.virtual_machines.begin_update(RG, "vm", {"tags": {"a": "b"}})
        assert exc.value.status_code == 409
        await poller.result()
        # Serialised, the second attachment works.
        await set_data_disks(env, "vm", [first.id, second.id])
        disks = env.sim.state().vm("vm").data_disks
        assert [(d.lun, d.name) for d in disks] == [(0, "first"), (1, "second")]


async def test_attach_rules(env: ArmEnv) -> None:
    _, nic = await make_network(env, "nic")
    _, other_nic = await make_network(env, "other-nic")
    restored = await upload_disk(env, "restored")
    pending = await upload_disk(env, "pending", revoke=False)
    await create_vm(env, "owner", vm_attach(nic.id, restored.id))

    async def refused(body: dict[str, Any]) -> HttpResponseError:
        with pytest.raises(HttpResponseError) as exc:
            await create_vm(env, "vm", body)
        return exc.value

    error = await refused(vm_attach(other_nic.id, restored.id))
    assert error.status_code == 409 and error_code(error) == "OperationNotAllowed"
    assert "already owned by VM" in str(error.message)
    assert isinstance(pending, str)
    error = await refused(vm_attach(other_nic.id, env.disk_id("pending")))
    assert error_code(error) == "OperationNotAllowed" and "ActiveUpload" in str(error.message)
    error = await refused(vm_attach(nic.id, env.disk_id("pending")))
    assert error_code(error) in ("OperationNotAllowed", "NicInUse")
    body = vm_attach(other_nic.id, restored.id)
    body["properties"]["osProfile"] = {"computerName": "x", "adminUsername": "y"}
    error = await refused(body)
    assert error_code(error) == "InvalidParameter" and error.error.target == "osProfile"
    unknown = await refused(vm_attach(other_nic.id, env.disk_id("missing")))
    assert unknown.status_code == 404
    no_nic = vm_attach(other_nic.id, restored.id)
    del no_nic["properties"]["networkProfile"]
    error = await refused(no_nic)
    assert error_code(error) == "InvalidParameter" and "networkProfile" in str(error.message)

    gen1 = await upload_disk(env, "gen2-only-size", generation="V1")
    error = await refused(vm_attach(other_nic.id, gen1.id, vm_size="Standard_D2ps_v5"))
    assert error_code(error) == "BadRequest" and "Hypervisor Generation '1'" in str(error.message)
    nameless = await upload_disk(env, "no-os-type", os_type=None)
    error = await refused(vm_attach(other_nic.id, nameless.id))
    assert error_code(error) == "InvalidParameter" and "osType" in str(error.message)

    # Data disks: LUNs are unique, disks attach once.
    data = await upload_disk(env, "data", os_type=None)
    vm = await env.compute.virtual_machines.get(RG, "owner")
    vm.properties.storage_profile.data_disks = [
        {"lun": 0, "createOption": "Attach", "managedDisk": {"id": data.id}},
        {"lun": 0, "createOption": "Empty", "diskSizeGB": 4},
    ]
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.virtual_machines.begin_create_or_update(RG, "owner", vm)
    assert error_code(exc.value) == "InvalidParameter" and "LUN 0" in str(exc.value.message)
    vm.properties.storage_profile.data_disks = [
        {"lun": 0, "createOption": "Attach", "managedDisk": {"id": data.id}},
        {"lun": 1, "createOption": "Empty", "diskSizeGB": 4, "name": "scratch"},
    ]
    poller = await env.compute.virtual_machines.begin_create_or_update(RG, "owner", vm)
    await poller.result()
    scratch = await env.compute.disks.get(RG, "scratch")
    assert scratch.properties.disk_size_gb == 4 and scratch.managed_by is not None

    # Attached disks and used NICs cannot be deleted.
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_delete(RG, "data")
    assert exc.value.status_code == 409 and error_code(exc.value) == "OperationNotAllowed"
    with pytest.raises(HttpResponseError) as exc:
        await env.network.network_interfaces.begin_delete(RG, "nic")
    assert exc.value.status_code == 400 and error_code(exc.value) == "NicInUse"


async def test_delete_vm_detaches_or_deletes_disks(env: ArmEnv) -> None:
    _, helper_nic = await make_network(env, "helper-nic")
    _, nic = await make_network(env, "nic")
    helper = await create_vm(env, "helper", vm_from_image(helper_nic.id))
    restored = await upload_disk(env, "restored")
    await create_vm(env, "vm", vm_attach(nic.id, restored.id))
    for name in ("helper", "vm"):
        poller = await env.compute.virtual_machines.begin_delete(RG, name)
        await poller.result()
    with pytest.raises(ResourceNotFoundError):
        await env.compute.virtual_machines.get(RG, "vm")
    # deleteOption Delete took the helper's OS disk; the attached one is only detached.
    with pytest.raises(ResourceNotFoundError):
        await env.compute.disks.get(RG, helper.properties.storage_profile.os_disk.name)
    assert (await env.compute.disks.get(RG, "restored")).properties.disk_state == "Unattached"
    assert (await env.network.network_interfaces.get(RG, "nic")).properties.virtual_machine is None
    poller = await env.network.network_interfaces.begin_delete(RG, "nic")
    await poller.result()
    state = env.sim.state()
    assert not state.virtual_machines and [n.name for n in state.network_interfaces.values()] == [
        "helper-nic"
    ]


# -- network ----------------------------------------------------------------------------------


async def test_network_resources(env: ArmEnv) -> None:
    poller = await env.network.virtual_networks.begin_create_or_update(
        RG,
        "net",
        {
            "location": LOCATION,
            "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}},
        },
    )
    vnet = await poller.result()
    assert vnet.properties.provisioning_state == "Succeeded" and not vnet.properties.subnets
    poller = await env.network.subnets.begin_create_or_update(
        RG, "net", "workers", {"properties": {"addressPrefix": "10.1.2.0/24"}}
    )
    subnet = await poller.result()
    assert subnet.id.endswith("/virtualNetworks/net/subnets/workers")
    assert [s.name async for s in env.network.subnets.list(RG, "net")] == ["workers"]
    with pytest.raises(HttpResponseError) as exc:
        await env.network.subnets.begin_create_or_update(
            RG, "net", "outside", {"properties": {"addressPrefix": "10.2.0.0/24"}}
        )
    assert error_code(exc.value) == "NetcfgSubnetRangeOutsideVnet"
    with pytest.raises(HttpResponseError) as exc:
        await env.network.subnets.begin_create_or_update(
            RG, "net", "overlap", {"properties": {"addressPrefix": "10.1.2.128/25"}}
        )
    assert error_code(exc.value) == "NetcfgSubnetRangesOverlap"

    async def nic(name: str, config: dict[str, Any]) -> Any:
        poller = await env.network.network_interfaces.begin_create_or_update(
            RG,
            name,
            {"location": LOCATION, "properties": {"ipConfigurations": [{"name": "ip", **config}]}},
        )
        return await poller.result()

    first = await nic("a", {"properties": {"subnet": {"id": subnet.id}}})
    second = await nic("b", {"properties": {"subnet": {"id": subnet.id}}})
    addresses = [
        n.properties.ip_configurations[0].properties.private_ip_address for n in (first, second)
    ]
    assert addresses == ["10.1.2.4", "10.1.2.5"]
    static = await nic(
        "c",
        {
            "properties": {
                "subnet": {"id": subnet.id},
                "privateIPAllocationMethod": "Static",
                "privateIPAddress": "10.1.2.50",
            }
        },
    )
    assert static.properties.ip_configurations[0].properties.private_ip_address == "10.1.2.50"
    with pytest.raises(HttpResponseError) as exc:
        await nic(
            "d",
            {
                "properties": {
                    "subnet": {"id": subnet.id},
                    "privateIPAllocationMethod": "Static",
                    "privateIPAddress": "10.1.2.4",
                }
            },
        )
    assert error_code(exc.value) == "PrivateIPAddressInUse"
    with pytest.raises(HttpResponseError) as exc:
        await nic("e", {"properties": {"subnet": {"id": subnet.id + "-missing"}}})
    assert error_code(exc.value) == "InvalidResourceReference"
    with pytest.raises(HttpResponseError) as exc:
        await env.network.subnets.begin_delete(RG, "net", "workers")
    assert error_code(exc.value) == "InUseSubnetCannotBeDeleted"
    subnet = await env.network.subnets.get(RG, "net", "workers")
    assert len(subnet.properties.ip_configurations) == 3
    assert env.sim.state().vnet("net").subnets[0].address_prefix == "10.1.2.0/24"


async def test_patch_and_list(env: ArmEnv) -> None:
    _, nic = await make_network(env)
    await create_vm(env, "vm", vm_from_image(nic.id))
    poller = await env.compute.virtual_machines.begin_update(
        RG,
        "vm",
        {
            "tags": {"role": "helper"},
            "properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}},
        },
    )
    vm = await poller.result()
    assert vm.tags == {"role": "helper"}
    assert vm.properties.hardware_profile.vm_size == "Standard_D4s_v5"
    assert [v.name async for v in env.compute.virtual_machines.list(RG)] == ["vm"]
    assert [v.name async for v in env.compute.virtual_machines.list_all()] == ["vm"]
    assert [n.name async for n in env.network.network_interfaces.list(RG)] == ["nic"]


async def test_close_cancels_running_operations(azurite: AzuriteProcess) -> None:
    started = anyio.current_time()
    async with arm_env(azurite, durations={"virtualMachines/create": 1e6}) as env:
        _, nic = await make_network(env)
        await env.compute.virtual_machines.begin_create_or_update(
            RG, "forever", vm_from_image(nic.id)
        )
        sim = env.sim
        assert sim.state().vm("forever").provisioning_state == "Creating"
    assert anyio.current_time() - started < 5
    running = [op for op in sim.state().operations if op.status == "InProgress"]
    assert [op.name for op in running] == ["virtualMachines/write"]
