"""Subnets as child resources of a virtual network: get, list, put, delete."""

from __future__ import annotations

import ipaddress

from azrestore.emulator.arm.calls import Call, Reply
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.network.address_space import check_subnets, parse_prefix
from azrestore.emulator.arm.network.resources import (
    SUBNET_MODELLED,
    NetworkResources,
    another_operation,
    subnet_in_use,
)
from azrestore.emulator.arm.request_bodies import required
from azrestore.emulator.arm.state.network import SubnetRecord, VnetRecord

__all__ = ["SubnetHandlers"]


class SubnetHandlers(NetworkResources):
    """Request handlers for ``.../virtualNetworks/<name>/subnets``."""

    def _find_subnet(self, call: Call, vnet: VnetRecord, name: str) -> SubnetRecord:
        subnet = vnet.subnets.get(name.lower())
        if subnet is None:
            raise ArmError(404, "NotFound", f"Resource {vnet.id}/subnets/{name} not found.")
        return subnet

    async def get_subnet(self, call: Call, vnet_name: str, name: str) -> Reply:
        """GET a subnet."""
        vnet = self.find_vnet(call, vnet_name)
        return Reply(200, self.subnet_body(vnet, self._find_subnet(call, vnet, name)))

    async def list_subnets(self, call: Call, vnet_name: str) -> Reply:
        """List a virtual network's subnets."""
        vnet = self.find_vnet(call, vnet_name)
        return Reply(200, {"value": [self.subnet_body(vnet, s) for s in vnet.subnets.values()]})

    async def put_subnet(self, call: Call, vnet_name: str, name: str) -> Reply:
        """PUT a subnet of an existing virtual network."""
        vnet = self.find_vnet(call, vnet_name)
        body = await call.json()
        props = body.get("properties") or {}
        prefix_text = required(props, "addressPrefix", "properties.addressPrefix")
        network = parse_prefix(prefix_text, f"{vnet.id}/subnets/{name}")
        if vnet.busy:
            assert vnet.pending is not None
            raise another_operation(self.core.operations.monitor_url(call, vnet.pending))
        existing = vnet.subnets.get(name.lower())
        others = [
            (s.name, ipaddress.ip_network(s.address_prefix))
            for s in vnet.subnets.values()
            if s.name.lower() != name.lower()
        ]
        space = [ipaddress.ip_network(p) for p in vnet.address_prefixes]
        check_subnets(vnet.name, space, [*others, (name, network)])
        if existing is not None and str(network) != existing.address_prefix:
            users = self.subnet_users(existing.id)
            if users:
                raise ArmError(
                    400,
                    "InUseSubnetCannotBeUpdated",
                    f"Subnet {existing.name} is in use by {users[0]} and cannot be updated.",
                )
        subnet = existing or SubnetRecord(
            id=f"{vnet.id}/subnets/{name}", name=name, address_prefix=""
        )
        subnet.address_prefix = str(network)
        subnet.provisioning_state = "Updating"
        subnet.extra = {k: v for k, v in props.items() if k not in SUBNET_MODELLED}
        vnet.subnets[name.lower()] = subnet

        async def run() -> None:
            subnet.provisioning_state = "Succeeded"

        def rollback(error: ArmError) -> None:
            subnet.provisioning_state = "Failed"

        operation = self.begin(call, vnet, "subnets/write", subnet.id, vnet.location, run, rollback)
        return self.written(call, operation, existing is not None, self.subnet_body(vnet, subnet))

    async def delete_subnet(self, call: Call, vnet_name: str, name: str) -> Reply:
        """DELETE a subnet (refused while a NIC uses it)."""
        vnet = self.find_vnet(call, vnet_name)
        subnet = vnet.subnets.get(name.lower())
        if subnet is None:
            return Reply(204)
        if vnet.busy:
            assert vnet.pending is not None
            raise another_operation(self.core.operations.monitor_url(call, vnet.pending))
        users = self.subnet_users(subnet.id)
        if users:
            raise subnet_in_use(subnet.name, users[0])
        subnet.provisioning_state = "Deleting"

        async def run() -> None:
            vnet.subnets.pop(name.lower(), None)

        operation = self.begin(call, vnet, "subnets/delete", subnet.id, vnet.location, run)
        return self.core.operations.accepted(call, operation)
