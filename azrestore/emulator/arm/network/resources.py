"""What the network handlers share: the records they find, the bodies of virtual networks
and subnets, and starting a network operation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from azrestore.emulator.arm.calls import Call, Reply
from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.errors import ArmError, resource_not_found
from azrestore.emulator.arm.resource_ids import arm_id, id_key
from azrestore.emulator.arm.state.network import NicRecord, SubnetRecord, VnetRecord
from azrestore.emulator.arm.state.operations import Operation

__all__ = [
    "NS",
    "SUBNET_MODELLED",
    "NetworkResources",
    "another_operation",
    "subnet_in_use",
]

NS: Final = "Microsoft.Network"
VNET_TYPE: Final = "Microsoft.Network/virtualNetworks"
SUBNET_TYPE: Final = "Microsoft.Network/virtualNetworks/subnets"
SUBNET_MODELLED: Final = frozenset(
    {"addressPrefix", "provisioningState", "ipConfigurations", "addressPrefixes"}
)


def another_operation(operation_url: str) -> ArmError:
    """409 AnotherOperationInProgress, pointing at the operation's monitor."""
    return ArmError(
        409,
        "AnotherOperationInProgress",
        "Another operation on this or dependent resource is in progress. To retrieve status of "
        f"the operation use uri: {operation_url}.",
    )


def subnet_in_use(name: str, user: str) -> ArmError:
    """400 InUseSubnetCannotBeDeleted."""
    return ArmError(
        400,
        "InUseSubnetCannotBeDeleted",
        f"Subnet {name} is in use by {user} and cannot be deleted. In order to delete the "
        "subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.",
    )


class NetworkResources:
    """The base of the network handlers: the core, lookups, bodies and operations."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.registry = core.registry

    def begin(
        self,
        call: Call,
        owner: NicRecord | VnetRecord,
        name: str,
        resource_id: str,
        location: str,
        run: Callable[[], Awaitable[None]],
        rollback: Callable[[ArmError], None] | None = None,
    ) -> Operation:
        """Start network operation ``name`` and make it ``owner``'s pending one."""
        operation = self.core.operations.begin(
            call,
            name=name,
            resource_id=resource_id,
            location=location,
            provider="network",
            run=run,
            rollback=rollback,
        )
        owner.pending = operation
        return operation

    def written(
        self, call: Call, operation: Operation, existed: bool, body: dict[str, Any]
    ) -> Reply:
        """The answer to a PUT that started ``operation``: 200 on update, 201 on create."""
        return Reply(
            200 if existed else 201,
            body,
            self.core.operations.lro_headers(call, operation, location=False),
        )

    def vnet_id(self, call: Call, name: str) -> str:
        """The id of the virtual network ``name`` in the call's resource group."""
        assert call.resource_group is not None
        return arm_id(call.subscription, call.resource_group, NS, "virtualNetworks", name)

    def find_vnet(self, call: Call, name: str) -> VnetRecord:
        """The virtual network, or 404."""
        vnet = self.registry.vnets.get(id_key(self.vnet_id(call, name)))
        if vnet is None:
            assert call.resource_group is not None
            raise resource_not_found(VNET_TYPE, name, call.resource_group)
        return vnet

    def subnet_users(self, subnet_id: str) -> list[str]:
        """The ids of the NIC IP configurations in a subnet."""
        return [
            f"{nic.id}/ipConfigurations/{config.name}"
            for nic in self.registry.nics.values()
            for config in nic.ip_configs
            if id_key(config.subnet_id) == id_key(subnet_id)
        ]

    def subnet_body(self, vnet: VnetRecord, subnet: SubnetRecord) -> dict[str, Any]:
        """A subnet as ARM answers it."""
        properties: dict[str, Any] = {
            "privateEndpointNetworkPolicies": "Disabled",
            "privateLinkServiceNetworkPolicies": "Enabled",
            **subnet.extra,
            "addressPrefix": subnet.address_prefix,
            "provisioningState": subnet.provisioning_state,
        }
        users = self.subnet_users(subnet.id)
        if users:
            properties["ipConfigurations"] = [{"id": user} for user in users]
        return {
            "id": subnet.id,
            "name": subnet.name,
            "type": SUBNET_TYPE,
            "etag": f'W/"{vnet.resource_guid}"',
            "properties": properties,
        }

    def vnet_body(self, vnet: VnetRecord) -> dict[str, Any]:
        """A virtual network as ARM answers it."""
        body: dict[str, Any] = {
            "id": vnet.id,
            "name": vnet.name,
            "type": VNET_TYPE,
            "location": vnet.location,
            "etag": f'W/"{vnet.resource_guid}"',
            "properties": {
                "enableDdosProtection": False,
                **vnet.extra,
                "provisioningState": vnet.provisioning_state,
                "resourceGuid": vnet.resource_guid,
                "addressSpace": {"addressPrefixes": list(vnet.address_prefixes)},
                "subnets": [self.subnet_body(vnet, s) for s in vnet.subnets.values()],
                "virtualNetworkPeerings": [],
            },
        }
        if vnet.tags:
            body["tags"] = dict(vnet.tags)
        return body
