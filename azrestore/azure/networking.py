"""The network a restored VM needs on Resource Manager: a subnet (and its virtual network)
and a network interface in it, created unless they exist."""

from __future__ import annotations

from typing import Any

from azure.mgmt.network.models import NetworkInterface, VirtualNetwork

from ..errors import ControlPlaneError
from .arm import arm_call, lro
from .mgmtclients import ManagementClients
from .resource_id import ResourceId


class Networking:
    """The network operations of a restore, through ``clients``."""

    def __init__(self, clients: ManagementClients) -> None:
        self._clients = clients

    async def ensure_nic(self, nic_id: str, *, subnet_id: str, location: str) -> str:
        """Create the NIC in ``subnet_id`` unless it exists; returns its id."""
        rid = ResourceId.parse(nic_id, expected="Microsoft.Network/networkInterfaces")
        nics = (await self._clients.network(rid.subscription)).network_interfaces
        try:
            existing = await arm_call(f"get NIC {rid.name}", nics.get(rid.resource_group, rid.name))
            return str(existing.as_dict().get("id") or rid)
        except ControlPlaneError as exc:
            if exc.status != 404:
                raise
        body: dict[str, Any] = {
            "location": location,
            "properties": {
                "ipConfigurations": [
                    {
                        "name": "ipconfig1",
                        "properties": {
                            "subnet": {"id": subnet_id},
                            "privateIPAllocationMethod": "Dynamic",
                        },
                    }
                ]
            },
        }
        await lro(
            f"create NIC {rid.name}",
            nics.begin_create_or_update(rid.resource_group, rid.name, NetworkInterface(body)),
        )
        return str(rid)

    async def delete_nic(self, nic_id: str) -> None:
        """Delete the NIC; one that does not exist is no error."""
        rid = ResourceId.parse(nic_id, expected="Microsoft.Network/networkInterfaces")
        nics = (await self._clients.network(rid.subscription)).network_interfaces
        try:
            await lro(f"delete NIC {rid.name}", nics.begin_delete(rid.resource_group, rid.name))
        except ControlPlaneError as exc:
            if exc.status != 404:
                raise

    async def ensure_subnet(self, subnet_id: str, *, location: str) -> None:
        """Create the virtual network and subnet of ``subnet_id`` unless they exist."""
        parts = subnet_id.strip("/").split("/")
        if len(parts) != 10 or parts[8].lower() != "subnets":
            raise ControlPlaneError(f"{subnet_id}: not a subnet id")
        subscription, group, vnet, subnet = parts[1], parts[3], parts[7], parts[9]
        network = await self._clients.network(subscription)
        try:
            await arm_call(f"get subnet {subnet}", network.subnets.get(group, vnet, subnet))
            return
        except ControlPlaneError as exc:
            if exc.status != 404:
                raise
        body: dict[str, Any] = {
            "location": location,
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [{"name": subnet, "properties": {"addressPrefix": "10.0.0.0/24"}}],
            },
        }
        await lro(
            f"create virtual network {vnet}",
            network.virtual_networks.begin_create_or_update(group, vnet, VirtualNetwork(body)),
        )
