"""Virtual networks: get, list, put (its ``subnets`` replace the existing ones), delete."""

from __future__ import annotations

import uuid
from typing import Any

from azrestore.emulator.arm.calls import Call, Reply, scope_prefix
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.network.address_space import Network, check_subnets, parse_prefix
from azrestore.emulator.arm.network.resources import (
    SUBNET_MODELLED,
    NetworkResources,
    another_operation,
    subnet_in_use,
)
from azrestore.emulator.arm.request_bodies import location_of, required, tags_of
from azrestore.emulator.arm.resource_ids import id_key
from azrestore.emulator.arm.state.network import SubnetRecord, VnetRecord

__all__ = ["VnetHandlers"]


class VnetHandlers(NetworkResources):
    """Request handlers for ``Microsoft.Network/virtualNetworks``."""

    async def get_vnet(self, call: Call, name: str) -> Reply:
        """GET a virtual network."""
        return Reply(200, self.vnet_body(self.find_vnet(call, name)))

    async def list_vnets(self, call: Call) -> Reply:
        """List virtual networks."""
        prefix = scope_prefix(call)
        items = [self.vnet_body(v) for k, v in self.registry.vnets.items() if k.startswith(prefix)]
        return Reply(200, {"value": items})

    async def put_vnet(self, call: Call, name: str) -> Reply:
        """PUT a virtual network (its ``subnets`` replace the existing ones)."""
        body = await call.json()
        vnet_id = self.vnet_id(call, name)
        existing = self.registry.vnets.get(id_key(vnet_id))
        location = location_of(body)
        props = body.get("properties") or {}
        space_text = (props.get("addressSpace") or {}).get("addressPrefixes") or []
        if not space_text:
            raise ArmError(
                400,
                "InvalidRequestFormat",
                "Cannot parse the request: virtual network addressSpace.addressPrefixes is "
                "required.",
            )
        space = [parse_prefix(p, vnet_id) for p in space_text]
        subnet_specs: list[tuple[str, Network, dict[str, Any]]] = []
        for index, spec in enumerate(props.get("subnets") or []):
            subnet_name = str(required(spec, "name", f"subnets[{index}].name"))
            sub_props = spec.get("properties") or {}
            prefix_text = required(sub_props, "addressPrefix", f"subnets[{index}].addressPrefix")
            subnet_specs.append(
                (
                    subnet_name,
                    parse_prefix(prefix_text, f"{vnet_id}/subnets/{subnet_name}"),
                    {k: v for k, v in sub_props.items() if k not in SUBNET_MODELLED},
                )
            )
        check_subnets(name, space, [(n, p) for n, p, _ in subnet_specs])
        if existing is not None:
            if existing.busy:
                assert existing.pending is not None
                raise another_operation(self.core.operations.monitor_url(call, existing.pending))
            wanted = {n.lower() for n, _, _ in subnet_specs}
            for subnet in existing.subnets.values():
                users = self.subnet_users(subnet.id)
                if subnet.name.lower() not in wanted and users:
                    raise subnet_in_use(subnet.name, users[0])
        assert call.resource_group is not None
        vnet = existing or VnetRecord(
            id=vnet_id,
            name=name,
            subscription=call.subscription,
            resource_group=call.resource_group,
            location=location,
            tags={},
            address_prefixes=[],
            subnets={},
            resource_guid=str(uuid.uuid4()),
        )
        vnet.tags = tags_of(body)
        vnet.address_prefixes = [str(p) for p in space]
        vnet.extra = {
            k: v
            for k, v in props.items()
            if k not in ("addressSpace", "subnets", "provisioningState", "resourceGuid")
        }
        old = vnet.subnets
        vnet.subnets = {}
        for subnet_name, network, extra in subnet_specs:
            previous = old.get(subnet_name.lower())
            vnet.subnets[subnet_name.lower()] = SubnetRecord(
                id=previous.id if previous else f"{vnet.id}/subnets/{subnet_name}",
                name=previous.name if previous else subnet_name,
                address_prefix=str(network),
                provisioning_state="Updating",
                extra=extra,
            )
        vnet.provisioning_state = "Updating"
        self.registry.vnets[id_key(vnet.id)] = vnet

        async def run() -> None:
            vnet.provisioning_state = "Succeeded"
            for subnet in vnet.subnets.values():
                subnet.provisioning_state = "Succeeded"

        def rollback(error: ArmError) -> None:
            vnet.provisioning_state = "Failed"

        operation = self.begin(
            call, vnet, "virtualNetworks/write", vnet.id, location, run, rollback
        )
        return self.written(call, operation, existing is not None, self.vnet_body(vnet))

    async def delete_vnet(self, call: Call, name: str) -> Reply:
        """DELETE a virtual network (refused while a subnet is in use)."""
        vnet = self.registry.vnets.get(id_key(self.vnet_id(call, name)))
        if vnet is None:
            return Reply(204)
        if vnet.busy:
            assert vnet.pending is not None
            raise another_operation(self.core.operations.monitor_url(call, vnet.pending))
        for subnet in vnet.subnets.values():
            users = self.subnet_users(subnet.id)
            if users:
                raise subnet_in_use(subnet.name, users[0])
        vnet.provisioning_state = "Deleting"

        async def run() -> None:
            self.registry.vnets.pop(id_key(vnet.id), None)

        def rollback(error: ArmError) -> None:
            vnet.provisioning_state = "Failed"

        operation = self.begin(
            call, vnet, "virtualNetworks/delete", vnet.id, vnet.location, run, rollback
        )
        return self.core.operations.accepted(call, operation)
