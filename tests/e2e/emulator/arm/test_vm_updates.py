"""VM updates and validation: concurrent updates, attaching disks, deleting a VM with its
disks, PATCH and list, and closing the simulator while operations run."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import types as compute_types
from azure.mgmt.compute.models import DataDisk

from azrestore.emulator.azurite import AzuriteProcess
from tests.support.arm.bodies import request_body
from tests.support.arm.disks import (
    disk_state,
    upload_disk,
)
from tests.support.arm.env import RG, ArmEnv, arm_env, error_code
from tests.support.arm.network import make_network
from tests.support.arm.vms import (
    create_vm,
    set_data_disks,
    vm_attach,
    vm_from_image,
)

pytestmark = pytest.mark.anyio


async def test_concurrent_updates_of_one_vm_conflict(azurite: AzuriteProcess) -> None:
    async with arm_env(azurite, durations={"virtualMachines/write": 100}) as env:
        _, nic = await make_network(env)
        await create_vm(env, "vm", vm_from_image(nic.id))
        first = await upload_disk(env, "first", os_type=None)
        second = await upload_disk(env, "second", os_type=None)
        vm = await env.compute.virtual_machines.get(RG, "vm")
        assert vm.properties is not None and vm.properties.storage_profile is not None
        vm.properties.storage_profile.data_disks = request_body(
            list[DataDisk], [{"lun": 0, "createOption": "Attach", "managedDisk": {"id": first.id}}]
        )
        poller = await env.compute.virtual_machines.begin_create_or_update(RG, "vm", vm)
        assert (await env.compute.disks.get(RG, "first")).managed_by == vm.id
        vm.properties.storage_profile.data_disks = request_body(
            list[DataDisk], [{"lun": 1, "createOption": "Attach", "managedDisk": {"id": second.id}}]
        )
        with pytest.raises(HttpResponseError) as exc:
            await env.compute.virtual_machines.begin_create_or_update(RG, "vm", vm)
        assert exc.value.status_code == 409 and error_code(exc.value) == "Conflict"
        with pytest.raises(HttpResponseError) as exc:
            await env.compute.virtual_machines.begin_update(
                RG, "vm", request_body(compute_types.VirtualMachineUpdate, {"tags": {"a": "b"}})
            )
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
    assert error.error is not None
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
    assert vm.properties is not None and vm.properties.storage_profile is not None
    vm.properties.storage_profile.data_disks = request_body(
        list[DataDisk],
        [
            {"lun": 0, "createOption": "Attach", "managedDisk": {"id": data.id}},
            {"lun": 0, "createOption": "Empty", "diskSizeGB": 4},
        ],
    )
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.virtual_machines.begin_create_or_update(RG, "owner", vm)
    assert error_code(exc.value) == "InvalidParameter" and "LUN 0" in str(exc.value.message)
    vm.properties.storage_profile.data_disks = request_body(
        list[DataDisk],
        [
            {"lun": 0, "createOption": "Attach", "managedDisk": {"id": data.id}},
            {"lun": 1, "createOption": "Empty", "diskSizeGB": 4, "name": "scratch"},
        ],
    )
    poller = await env.compute.virtual_machines.begin_create_or_update(RG, "owner", vm)
    await poller.result()
    scratch = await env.compute.disks.get(RG, "scratch")
    assert scratch.properties is not None
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
    assert await disk_state(env, "restored") == "Unattached"
    detached = await env.network.network_interfaces.get(RG, "nic")
    assert detached.properties is not None
    assert detached.properties.virtual_machine is None
    poller = await env.network.network_interfaces.begin_delete(RG, "nic")
    await poller.result()
    state = env.sim.state()
    assert not state.virtual_machines and [n.name for n in state.network_interfaces.values()] == [
        "helper-nic"
    ]


async def test_patch_and_list(env: ArmEnv) -> None:
    _, nic = await make_network(env)
    await create_vm(env, "vm", vm_from_image(nic.id))
    poller = await env.compute.virtual_machines.begin_update(
        RG,
        "vm",
        request_body(
            compute_types.VirtualMachineUpdate,
            {
                "tags": {"role": "helper"},
                "properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}},
            },
        ),
    )
    vm = await poller.result()
    assert vm.tags == {"role": "helper"}
    assert vm.properties is not None and vm.properties.hardware_profile is not None
    assert vm.properties.hardware_profile.vm_size == "Standard_D4s_v5"
    assert [v.name async for v in env.compute.virtual_machines.list(RG)] == ["vm"]
    assert [v.name async for v in env.compute.virtual_machines.list_all()] == ["vm"]
    assert [n.name async for n in env.network.network_interfaces.list(RG)] == ["nic"]


async def test_close_cancels_running_operations(azurite: AzuriteProcess) -> None:
    started = anyio.current_time()
    async with arm_env(azurite, durations={"virtualMachines/create": 1e6}) as env:
        _, nic = await make_network(env)
        await env.compute.virtual_machines.begin_create_or_update(
            RG, "forever", request_body(compute_types.VirtualMachine, vm_from_image(nic.id))
        )
        sim = env.sim
        assert sim.state().vm("forever").provisioning_state == "Creating"
    assert anyio.current_time() - started < 5
    running = [op for op in sim.state().operations if op.status == "InProgress"]
    assert [op.name for op in running] == ["virtualMachines/write"]
