"""VM building blocks: marketplace images, VM bodies, and driving a VM through the SDK."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
from azure.mgmt.compute import types as compute_types
from azure.mgmt.compute.models import DataDisk

from tests.support.arm.bodies import request_body
from tests.support.arm.env import LOCATION, RG, ArmEnv

UBUNTU = {
    "publisher": "Canonical",
    "offer": "ubuntu-24_04-lts",
    "sku": "server",
    "version": "latest",
}
UBUNTU_GEN2 = {**UBUNTU, "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts-gen2"}
WINDOWS = {
    "publisher": "MicrosoftWindowsServer",
    "offer": "WindowsServer",
    "sku": "2022-datacenter-g2",
    "version": "latest",
}
LINUX_PROFILE = {
    "computerName": "helper",
    "adminUsername": "azrestore",
    "linuxConfiguration": {
        "disablePasswordAuthentication": True,
        "ssh": {
            "publicKeys": [
                {"path": "/home/azrestore/.ssh/authorized_keys", "keyData": "ssh-ed25519 AAAA"}
            ]
        },
    },
}
# Tests that look at a transient state (booting, deallocating) stretch that phase so a slow
# machine still sees it.
SLOW_AGENT = {"virtualMachines/agentReady": 100.0}
SLOW_POWER = {"virtualMachines/start": 100.0, "virtualMachines/deallocate": 100.0}


def vm_from_image(
    nic_id: str, image: Mapping[str, str] = UBUNTU_GEN2, **extra: Any
) -> dict[str, Any]:
    """A VM body built from a marketplace image (a helper appliance)."""
    body: dict[str, Any] = {
        "location": LOCATION,
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
            "storageProfile": {
                "imageReference": dict(image),
                "osDisk": {"createOption": "FromImage", "deleteOption": "Delete"},
            },
            "osProfile": dict(LINUX_PROFILE)
            if "Windows" not in image["publisher"]
            else {
                "computerName": "helper",
                "adminUsername": "azrestore",
                "adminPassword": "P@ss-w0rd!",
            },
            "networkProfile": {"networkInterfaces": [{"id": nic_id}]},
        },
    }
    body["properties"].update(extra)
    return body


def vm_attach(nic_id: str, os_disk_id: str, vm_size: str = "Standard_D2s_v5") -> dict[str, Any]:
    """A VM body that boots an attached (restored) OS disk."""
    return {
        "location": LOCATION,
        "properties": {
            "hardwareProfile": {"vmSize": vm_size},
            "storageProfile": {
                "osDisk": {"createOption": "Attach", "managedDisk": {"id": os_disk_id}}
            },
            "networkProfile": {"networkInterfaces": [{"id": nic_id}]},
        },
    }


def status_codes(instance_view: Any) -> list[str]:
    """The instance view's status codes."""
    return [status.code for status in instance_view.statuses]


def agent_status(instance_view: Any) -> str | None:
    """The guest agent's display status (None when the view has no agent)."""
    agent = instance_view.vm_agent
    if agent is None or not agent.statuses:
        return None
    status: str = agent.statuses[0].display_status
    return status


async def create_vm(env: ArmEnv, name: str, body: dict[str, Any]) -> Any:
    """Create a VM and wait for the create to end."""
    poller = await env.compute.virtual_machines.begin_create_or_update(
        RG, name, request_body(compute_types.VirtualMachine, body)
    )
    return await poller.result()


async def run_command(env: ArmEnv, vm: str, script: list[str], **extra: Any) -> Any:
    """Run a script (RunShellScript unless ``command_id`` says otherwise) and wait."""
    body = {"commandId": extra.pop("command_id", "RunShellScript"), "script": script, **extra}
    poller = await env.compute.virtual_machines.begin_run_command(
        RG, vm, request_body(compute_types.RunCommandInput, body)
    )
    return await poller.result()


async def set_data_disks(env: ArmEnv, vm_name: str, disk_ids: list[str]) -> Any:
    """Replace a VM's data disks by ``disk_ids`` at LUNs 0, 1, ..."""
    vm = await env.compute.virtual_machines.get(RG, vm_name)
    assert vm.properties is not None and vm.properties.storage_profile is not None
    vm.properties.storage_profile.data_disks = request_body(
        list[DataDisk],
        [
            {"lun": lun, "createOption": "Attach", "managedDisk": {"id": disk_id}}
            for lun, disk_id in enumerate(disk_ids)
        ],
    )
    poller = await env.compute.virtual_machines.begin_create_or_update(RG, vm_name, vm)
    return await poller.result()


async def wait_for_agent(env: ArmEnv, vm_name: str, within: float = 3.0) -> str | None:
    """Poll the instance view until the agent is Ready or ``within`` seconds pass."""
    status: str | None = None
    with anyio.move_on_after(within):
        while True:
            view = await env.compute.virtual_machines.instance_view(RG, vm_name)
            status = agent_status(view)
            if status == "Ready":
                break
            await anyio.sleep(0.05)
    return status
