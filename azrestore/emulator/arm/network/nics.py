"""Network interfaces in a subnet: get, list, put (private IPs allocated), delete."""

from __future__ import annotations

import random
import uuid
from typing import Any, Final

from azrestore.emulator.arm.calls import Call, Reply, scope_prefix
from azrestore.emulator.arm.errors import ArmError, resource_not_found
from azrestore.emulator.arm.network.ip_allocation import allocate_private_ip
from azrestore.emulator.arm.network.resources import NS, NetworkResources, another_operation
from azrestore.emulator.arm.request_bodies import location_of, required, tags_of
from azrestore.emulator.arm.resource_ids import (
    arm_id,
    id_key,
    location_key,
    resource_id_segments,
)
from azrestore.emulator.arm.state.network import IpConfig, NicRecord, SubnetRecord, VnetRecord

__all__ = ["NicHandlers"]

NIC_TYPE: Final = "Microsoft.Network/networkInterfaces"


def _mac() -> str:
    # Azure's NICs use Microsoft's 00-0D-3A prefix.
    return "00-0D-3A-" + "-".join(f"{random.randrange(256):02X}" for _ in range(3))


class NicHandlers(NetworkResources):
    """Request handlers for ``Microsoft.Network/networkInterfaces``."""

    def _nic_id(self, call: Call, name: str) -> str:
        assert call.resource_group is not None
        return arm_id(call.subscription, call.resource_group, NS, "networkInterfaces", name)

    def nic_body(self, nic: NicRecord) -> dict[str, Any]:
        """A network interface as ARM answers it."""
        properties: dict[str, Any] = {
            "enableAcceleratedNetworking": False,
            "enableIPForwarding": False,
            "nicType": "Standard",
            **nic.extra,
            "provisioningState": nic.provisioning_state,
            "resourceGuid": nic.resource_guid,
            "ipConfigurations": [
                {
                    "name": config.name,
                    "id": f"{nic.id}/ipConfigurations/{config.name}",
                    "type": f"{NIC_TYPE}/ipConfigurations",
                    "etag": f'W/"{nic.resource_guid}"',
                    "properties": {
                        "provisioningState": nic.provisioning_state,
                        "privateIPAddress": config.private_ip,
                        "privateIPAllocationMethod": config.allocation,
                        "subnet": {"id": config.subnet_id},
                        "primary": config.primary,
                        "privateIPAddressVersion": "IPv4",
                    },
                }
                for config in nic.ip_configs
            ],
            "dnsSettings": {"dnsServers": [], "appliedDnsServers": []},
        }
        if nic.vm_id is not None:
            properties["virtualMachine"] = {"id": nic.vm_id}
            properties["macAddress"] = nic.mac
            vm = self.registry.vms.get(id_key(nic.vm_id))
            if vm is not None:
                properties["primary"] = any(
                    primary for nic_id, primary in vm.nics if id_key(nic_id) == id_key(nic.id)
                )
        body: dict[str, Any] = {
            "id": nic.id,
            "name": nic.name,
            "type": NIC_TYPE,
            "location": nic.location,
            "etag": f'W/"{nic.resource_guid}"',
            "properties": properties,
        }
        if nic.tags:
            body["tags"] = dict(nic.tags)
        return body

    async def get_nic(self, call: Call, name: str) -> Reply:
        """GET a network interface."""
        nic = self.registry.nics.get(id_key(self._nic_id(call, name)))
        if nic is None:
            assert call.resource_group is not None
            raise resource_not_found(NIC_TYPE, name, call.resource_group)
        return Reply(200, self.nic_body(nic))

    async def list_nics(self, call: Call) -> Reply:
        """List network interfaces."""
        prefix = scope_prefix(call)
        items = [self.nic_body(n) for k, n in self.registry.nics.items() if k.startswith(prefix)]
        return Reply(200, {"value": items})

    def _subnet_by_id(self, subnet_id: str) -> tuple[VnetRecord, SubnetRecord] | None:
        parts = resource_id_segments(subnet_id)
        vnet_name, subnet_name = parts.get("virtualnetworks"), parts.get("subnets")
        if vnet_name is None or subnet_name is None:
            return None
        vnet_id = subnet_id[: subnet_id.lower().rindex("/subnets/")]
        vnet = self.registry.vnets.get(id_key(vnet_id))
        if vnet is None:
            return None
        subnet = vnet.subnets.get(subnet_name.lower())
        return None if subnet is None else (vnet, subnet)

    async def put_nic(self, call: Call, name: str) -> Reply:
        """PUT a network interface in an existing subnet."""
        body = await call.json()
        nic_id = self._nic_id(call, name)
        existing = self.registry.nics.get(id_key(nic_id))
        location = location_of(body)
        props = body.get("properties") or {}
        specs = props.get("ipConfigurations") or []
        if not specs:
            raise ArmError(
                400,
                "InvalidRequestFormat",
                "Cannot parse the request: a network interface needs at least one IP "
                "configuration (properties.ipConfigurations).",
            )
        if existing is not None and existing.busy:
            assert existing.pending is not None
            raise another_operation(self.core.operations.monitor_url(call, existing.pending))
        configs: list[IpConfig] = []
        for index, spec in enumerate(specs):
            config_name = str(spec.get("name") or f"ipconfig{index + 1}")
            config_props = spec.get("properties") or {}
            subnet_ref = config_props.get("subnet") or {}
            subnet_id = str(required(subnet_ref, "id", f"ipConfigurations[{index}].subnet.id"))
            found = self._subnet_by_id(subnet_id)
            if found is None or location_key(found[0].location) != location_key(location):
                raise ArmError(
                    400,
                    "InvalidResourceReference",
                    f"Resource {subnet_id} referenced by resource {nic_id} was not found. Please "
                    "make sure that the referenced resource exists, and that both resources are "
                    "in the same region.",
                )
            current = None
            if existing is not None:
                current = next(
                    (c for c in existing.ip_configs if c.name.lower() == config_name.lower()), None
                )
            address, method = allocate_private_ip(
                self.registry, nic_id, config_name, found[1], config_props, current
            )
            if any(
                c.private_ip == address and id_key(c.subnet_id) == id_key(subnet_id)
                for c in configs
            ):
                raise ArmError(
                    400,
                    "PrivateIPAddressInUse",
                    f"The private IP address {address} is used twice in network interface "
                    f"{nic_id}.",
                )
            configs.append(
                IpConfig(
                    name=config_name,
                    subnet_id=found[1].id,
                    private_ip=address,
                    allocation=method,
                    primary=bool(config_props.get("primary", index == 0)),
                )
            )
        assert call.resource_group is not None
        nic = existing or NicRecord(
            id=nic_id,
            name=name,
            subscription=call.subscription,
            resource_group=call.resource_group,
            location=location,
            tags={},
            ip_configs=[],
            resource_guid=str(uuid.uuid4()),
            mac=_mac(),
        )
        nic.tags = tags_of(body)
        nic.ip_configs = configs
        nic.extra = {
            k: v
            for k, v in props.items()
            if k
            not in (
                "ipConfigurations",
                "provisioningState",
                "resourceGuid",
                "virtualMachine",
                "macAddress",
                "primary",
            )
        }
        nic.provisioning_state = "Succeeded"
        self.registry.nics[id_key(nic.id)] = nic

        async def run() -> None:
            nic.provisioning_state = "Succeeded"

        def rollback(error: ArmError) -> None:
            nic.provisioning_state = "Failed"

        operation = self.begin(
            call, nic, "networkInterfaces/write", nic.id, location, run, rollback
        )
        return self.written(call, operation, existing is not None, self.nic_body(nic))

    async def delete_nic(self, call: Call, name: str) -> Reply:
        """DELETE a network interface (refused while a VM uses it)."""
        nic = self.registry.nics.get(id_key(self._nic_id(call, name)))
        if nic is None:
            return Reply(204)
        if nic.vm_id is not None:
            raise ArmError(
                400,
                "NicInUse",
                f"Network Interface {nic.id} is used by existing resource {nic.vm_id}. In order "
                "to delete the network interface, it must be dissociated from the resource. To "
                "learn more, see aka.ms/deletenic.",
            )
        if nic.busy:
            assert nic.pending is not None
            raise another_operation(self.core.operations.monitor_url(call, nic.pending))
        nic.provisioning_state = "Deleting"

        async def run() -> None:
            self.registry.nics.pop(id_key(nic.id), None)

        def rollback(error: ArmError) -> None:
            nic.provisioning_state = "Failed"

        operation = self.begin(
            call, nic, "networkInterfaces/delete", nic.id, nic.location, run, rollback
        )
        return self.core.operations.accepted(call, operation)
