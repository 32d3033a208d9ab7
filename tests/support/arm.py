"""Shared helpers for the Resource Manager simulator's contract tests.

The simulator is driven only through the real azure-mgmt-compute / azure-mgmt-network aio
clients (plus azure-storage-blob for the page writes a disk upload makes).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient
from azure.storage.blob.aio import BlobClient

from azrestore.emulator.arm import (
    ArmFaultRule,
    ArmSimulator,
    RunCommandRule,
    StorageConfig,
)
from azrestore.emulator.azurite import AzuriteProcess
from azrestore.emulator.storage import SasRefusal, StorageGateway
from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import fixed_vhd_footer

SUB = "11111111-2222-3333-4444-555555555555"
RG = "restore-rg"
LOCATION = "westus"

#: Simulated durations shrink 200-fold: a VM create takes 0.225 s, a disk grant 0.015 s.
TIME_FACTOR = 0.005
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


class StaticToken:
    """A credential that hands out one static bearer token (the emulator accepts any)."""

    def __init__(self, token: str = "emulator-token") -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticToken:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


@dataclass
class ArmEnv:
    """A simulator with its gateway and SDK clients."""

    sim: ArmSimulator
    gateway: StorageGateway
    azurite: AzuriteProcess
    compute: ComputeManagementClient
    network: NetworkManagementClient

    def disk_id(self, name: str) -> str:
        return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/disks/{name}"


@asynccontextmanager
async def arm_env(
    azurite: AzuriteProcess,
    *,
    rules: Sequence[ArmFaultRule] = (),
    run_command_rules: Sequence[RunCommandRule] = (),
    durations: Mapping[str, float] | None = None,
    time_factor: float = TIME_FACTOR,
) -> AsyncIterator[ArmEnv]:
    """A simulator on the session's Azurite, its own strict gateway, and SDK clients."""
    holder: list[ArmSimulator] = []

    def sas_check(operation: str, path: str, query: Mapping[str, str]) -> SasRefusal | None:
        return holder[0].sas_check(operation, path, query) if holder else None

    async with StorageGateway(azurite.account_url, sas_check=sas_check) as gateway:
        storage = StorageConfig(
            account_url=azurite.account_url, public_account_url=gateway.account_url
        )
        async with ArmSimulator(
            time_factor=time_factor,
            subscription_id=SUB,
            storage=storage,
            rules=rules,
            run_command_rules=run_command_rules,
            durations=durations,
        ) as sim:
            holder.append(sim)
            options: dict[str, Any] = {
                "base_url": sim.endpoint,
                "connection_verify": sim.ca_bundle,
            }
            async with (
                ComputeManagementClient(StaticToken(), SUB, **options) as compute,
                NetworkManagementClient(StaticToken(), SUB, **options) as network,
            ):
                yield ArmEnv(sim, gateway, azurite, compute, network)


# -- building blocks ---------------------------------------------------------------------------


async def upload_disk(
    env: ArmEnv,
    name: str,
    *,
    virtual_size: int = 32 * MiB,
    os_type: str | None = "Linux",
    generation: str = "V2",
    footer: bytes | None = None,
    revoke: bool = True,
) -> Any:
    """Create an Upload disk, write a fixed VHD footer to it through its SAS, revoke.

    Returns the disk (after revoke) or, with ``revoke=False``, the SAS URL.
    """
    properties: dict[str, Any] = {
        "hyperVGeneration": generation,
        "creationData": {"createOption": "Upload", "uploadSizeBytes": virtual_size + 512},
    }
    if os_type is not None:
        properties["osType"] = os_type
    poller = await env.compute.disks.begin_create_or_update(
        RG, name, {"location": LOCATION, "properties": properties}
    )
    await poller.result()
    poller = await env.compute.disks.begin_grant_access(
        RG, name, {"access": "Write", "durationInSeconds": 3600}
    )
    access = await poller.result()
    sas = access.access_sas
    data = footer if footer is not None else fixed_vhd_footer(virtual_size)
    await write_pages(sas, virtual_size + 512 - len(data), data)
    if not revoke:
        return sas
    poller = await env.compute.disks.begin_revoke_access(RG, name)
    await poller.result()
    return await env.compute.disks.get(RG, name)


async def write_pages(sas_url: str, offset: int, data: bytes) -> None:
    """Put Page through a SAS URL (the gateway checks it like Azure)."""
    async with BlobClient.from_blob_url(sas_url) as blob:
        await blob.upload_page(data, offset=offset, length=len(data))


async def read_tail(sas_url: str, length: int = 512) -> tuple[bytes, int]:
    """The blob's last ``length`` bytes and its size, through a SAS URL."""
    async with BlobClient.from_blob_url(sas_url) as blob:
        properties = await blob.get_blob_properties()
        size = int(properties.size)
        downloader = await blob.download_blob(offset=size - length, length=length)
        return await downloader.readall(), size


async def make_network(env: ArmEnv, nic_name: str = "nic") -> tuple[Any, Any]:
    """A virtual network with one subnet and a NIC in it (creating the vnet once)."""
    try:
        vnet = await env.network.virtual_networks.get(RG, "vnet")
    except Exception:
        poller = await env.network.virtual_networks.begin_create_or_update(
            RG,
            "vnet",
            {
                "location": LOCATION,
                "properties": {
                    "addressSpace": {"addressPrefixes": ["10.10.0.0/16"]},
                    "subnets": [
                        {"name": "default", "properties": {"addressPrefix": "10.10.1.0/24"}}
                    ],
                },
            },
        )
        vnet = await poller.result()
    subnet_id = vnet.properties.subnets[0].id
    poller = await env.network.network_interfaces.begin_create_or_update(
        RG,
        nic_name,
        {
            "location": LOCATION,
            "properties": {
                "ipConfigurations": [
                    {"name": "ipconfig1", "properties": {"subnet": {"id": subnet_id}}}
                ]
            },
        },
    )
    return vnet, await poller.result()


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
