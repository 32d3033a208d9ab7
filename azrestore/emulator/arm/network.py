"""Network (``Microsoft.Network``): virtual networks with subnets (also as child resources) and
network interfaces in a subnet, enough for azure-mgmt-network's client to build a helper
VM's network and for VMs to reference the NIC.

Private IPs are allocated like Azure does: the first four addresses of a subnet and its last
are reserved, Dynamic takes the lowest free one, Static must be free and in the subnet.
"""

from __future__ import annotations

import ipaddress
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from azrestore.emulator.arm.core import (
    Call,
    Core,
    Reply,
    Route,
    arm_id,
    location_key,
    location_of,
    parse_id,
    required,
    scope_prefix,
    tags_of,
)
from azrestore.emulator.arm.errors import ArmError, resource_not_found
from azrestore.emulator.arm.state import (
    IpConfig,
    NicRecord,
    Operation,
    SubnetRecord,
    VnetRecord,
    key,
)

__all__ = ["NetworkHandlers"]

NS: Final = "Microsoft.Network"
VNET_TYPE: Final = "Microsoft.Network/virtualNetworks"
SUBNET_TYPE: Final = "Microsoft.Network/virtualNetworks/subnets"
NIC_TYPE: Final = "Microsoft.Network/networkInterfaces"
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _prefix(text: Any, owner: str) -> _Network:
    try:
        return ipaddress.ip_network(str(text), strict=True)
    except ValueError:
        raise ArmError(
            400,
            "InvalidAddressPrefixFormat",
            f"Address prefix {text} of resource {owner} is not formatted correctly. It should "
            "follow CIDR notation, for example 10.0.0.0/24.",
        ) from None


def _another_operation(call: Call, operation_url: str) -> ArmError:
    return ArmError(
        409,
        "AnotherOperationInProgress",
        "Another operation on this or dependent resource is in progress. To retrieve status of "
        f"the operation use uri: {operation_url}.",
    )


def _mac() -> str:
    # Azure's NICs use Microsoft's 00-0D-3A prefix.
    return "00-0D-3A-" + "-".join(f"{random.randrange(256):02X}" for _ in range(3))


class NetworkHandlers:
    """Request handlers for virtual networks, subnets and network interfaces."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.registry = core.registry

    def _begin(
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
        operation = self.core.begin(
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

    def _written(
        self, call: Call, operation: Operation, existed: bool, body: dict[str, Any]
    ) -> Reply:
        """The answer to a PUT that started ``operation``: 200 on update, 201 on create."""
        return Reply(
            200 if existed else 201, body, self.core.lro_headers(call, operation, location=False)
        )

    # -- routing -----------------------------------------------------------------------------

    def route(self, call: Call, resource_type: str, name: str | None, child: list[str]) -> Route:
        """The route of a request under ``.../providers/Microsoft.Network/<type>``."""
        method = call.method
        kind = resource_type.lower()
        if kind == "networkinterfaces":
            return self._route_nic(call, name, child, method)
        if kind == "virtualnetworks":
            return self._route_vnet(call, name, child, method)
        raise ArmError(
            404,
            "InvalidResourceType",
            f"The resource type '{resource_type}' could not be found in the namespace "
            f"'{NS}' for api version '{call.api_version}'.",
        )

    def _route_nic(self, call: Call, name: str | None, child: list[str], method: str) -> Route:
        if name is None:
            if method == "GET":
                return Route("networkInterfaces/list", self.list_nics)
            raise _method_not_allowed(method)
        if child:
            raise ArmError(404, "NotFound", f"Resource {call.path} not found.")
        assert call.resource_group is not None
        rid = arm_id(call.subscription, call.resource_group, NS, "networkInterfaces", name)

        def bind(fn: Callable[[Call, str], Awaitable[Reply]]) -> Callable[[Call], Awaitable[Reply]]:
            return lambda c: fn(c, name)

        if method == "GET":
            return Route("networkInterfaces/read", bind(self.get_nic), rid)
        if method == "PUT":
            return Route("networkInterfaces/write", bind(self.put_nic), rid, starts_operation=True)
        if method == "DELETE":
            return Route(
                "networkInterfaces/delete", bind(self.delete_nic), rid, starts_operation=True
            )
        raise _method_not_allowed(method)

    def _route_vnet(self, call: Call, name: str | None, child: list[str], method: str) -> Route:
        if name is None:
            if method == "GET":
                return Route("virtualNetworks/list", self.list_vnets)
            raise _method_not_allowed(method)
        assert call.resource_group is not None
        rid = arm_id(call.subscription, call.resource_group, NS, "virtualNetworks", name)
        if not child:

            def bind(
                fn: Callable[[Call, str], Awaitable[Reply]],
            ) -> Callable[[Call], Awaitable[Reply]]:
                return lambda c: fn(c, name)

            if method == "GET":
                return Route("virtualNetworks/read", bind(self.get_vnet), rid)
            if method == "PUT":
                return Route(
                    "virtualNetworks/write", bind(self.put_vnet), rid, starts_operation=True
                )
            if method == "DELETE":
                return Route(
                    "virtualNetworks/delete", bind(self.delete_vnet), rid, starts_operation=True
                )
            raise _method_not_allowed(method)
        if child[0].lower() != "subnets" or len(child) > 2:
            raise ArmError(404, "NotFound", f"Resource {call.path} not found.")
        if len(child) == 1:
            if method == "GET":
                return Route("subnets/list", lambda c: self.list_subnets(c, name), rid)
            raise _method_not_allowed(method)
        subnet = child[1]
        sid = f"{rid}/subnets/{subnet}"

        def bind2(
            fn: Callable[[Call, str, str], Awaitable[Reply]],
        ) -> Callable[[Call], Awaitable[Reply]]:
            return lambda c: fn(c, name, subnet)

        if method == "GET":
            return Route("subnets/read", bind2(self.get_subnet), sid)
        if method == "PUT":
            return Route("subnets/write", bind2(self.put_subnet), sid, starts_operation=True)
        if method == "DELETE":
            return Route("subnets/delete", bind2(self.delete_subnet), sid, starts_operation=True)
        raise _method_not_allowed(method)

    # -- virtual networks --------------------------------------------------------------------

    def _vnet_id(self, call: Call, name: str) -> str:
        assert call.resource_group is not None
        return arm_id(call.subscription, call.resource_group, NS, "virtualNetworks", name)

    def find_vnet(self, call: Call, name: str) -> VnetRecord:
        """The virtual network, or 404."""
        vnet = self.registry.vnets.get(key(self._vnet_id(call, name)))
        if vnet is None:
            assert call.resource_group is not None
            raise resource_not_found(VNET_TYPE, name, call.resource_group)
        return vnet

    def _subnet_users(self, subnet_id: str) -> list[str]:
        return [
            f"{nic.id}/ipConfigurations/{config.name}"
            for nic in self.registry.nics.values()
            for config in nic.ip_configs
            if key(config.subnet_id) == key(subnet_id)
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
        users = self._subnet_users(subnet.id)
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

    def _check_subnets(
        self, vnet_name: str, space: list[_Network], subnets: list[tuple[str, _Network]]
    ) -> None:
        for index, (name, network) in enumerate(subnets):
            if not any(
                network.version == outer.version and network.subnet_of(outer)  # type: ignore[arg-type]
                for outer in space
            ):
                raise ArmError(
                    400,
                    "NetcfgSubnetRangeOutsideVnet",
                    f"Subnet '{name}' is not valid because its IP address range is outside the "
                    f"IP address range of virtual network '{vnet_name}'.",
                )
            for other_name, other in subnets[:index]:
                if network.overlaps(other):
                    raise ArmError(
                        400,
                        "NetcfgSubnetRangesOverlap",
                        f"Subnet '{name}' is not valid because its IP address range overlaps "
                        f"with that of an existing subnet '{other_name}' in virtual network "
                        f"'{vnet_name}'.",
                    )

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
        vnet_id = self._vnet_id(call, name)
        existing = self.registry.vnets.get(key(vnet_id))
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
        space = [_prefix(p, vnet_id) for p in space_text]
        subnet_specs: list[tuple[str, _Network, dict[str, Any]]] = []
        for index, spec in enumerate(props.get("subnets") or []):
            subnet_name = str(required(spec, "name", f"subnets[{index}].name"))
            sub_props = spec.get("properties") or {}
            prefix_text = required(sub_props, "addressPrefix", f"subnets[{index}].addressPrefix")
            subnet_specs.append(
                (
                    subnet_name,
                    _prefix(prefix_text, f"{vnet_id}/subnets/{subnet_name}"),
                    {k: v for k, v in sub_props.items() if k not in _SUBNET_MODELLED},
                )
            )
        self._check_subnets(name, space, [(n, p) for n, p, _ in subnet_specs])
        if existing is not None:
            if existing.busy:
                assert existing.pending is not None
                raise _another_operation(call, self.core.monitor_url(call, existing.pending))
            wanted = {n.lower() for n, _, _ in subnet_specs}
            for subnet in existing.subnets.values():
                users = self._subnet_users(subnet.id)
                if subnet.name.lower() not in wanted and users:
                    raise _subnet_in_use(subnet.name, users[0])
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
        self.registry.vnets[key(vnet.id)] = vnet

        async def run() -> None:
            vnet.provisioning_state = "Succeeded"
            for subnet in vnet.subnets.values():
                subnet.provisioning_state = "Succeeded"

        def rollback(error: ArmError) -> None:
            vnet.provisioning_state = "Failed"

        operation = self._begin(
            call, vnet, "virtualNetworks/write", vnet.id, location, run, rollback
        )
        return self._written(call, operation, existing is not None, self.vnet_body(vnet))

    async def delete_vnet(self, call: Call, name: str) -> Reply:
        """DELETE a virtual network (refused while a subnet is in use)."""
        vnet = self.registry.vnets.get(key(self._vnet_id(call, name)))
        if vnet is None:
            return Reply(204)
        if vnet.busy:
            assert vnet.pending is not None
            raise _another_operation(call, self.core.monitor_url(call, vnet.pending))
        for subnet in vnet.subnets.values():
            users = self._subnet_users(subnet.id)
            if users:
                raise _subnet_in_use(subnet.name, users[0])
        vnet.provisioning_state = "Deleting"

        async def run() -> None:
            self.registry.vnets.pop(key(vnet.id), None)

        def rollback(error: ArmError) -> None:
            vnet.provisioning_state = "Failed"

        operation = self._begin(
            call, vnet, "virtualNetworks/delete", vnet.id, vnet.location, run, rollback
        )
        return self.core.accepted(call, operation)

    # -- subnets -----------------------------------------------------------------------------

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
        network = _prefix(prefix_text, f"{vnet.id}/subnets/{name}")
        if vnet.busy:
            assert vnet.pending is not None
            raise _another_operation(call, self.core.monitor_url(call, vnet.pending))
        existing = vnet.subnets.get(name.lower())
        others = [
            (s.name, ipaddress.ip_network(s.address_prefix))
            for s in vnet.subnets.values()
            if s.name.lower() != name.lower()
        ]
        space = [ipaddress.ip_network(p) for p in vnet.address_prefixes]
        self._check_subnets(vnet.name, space, [*others, (name, network)])
        if existing is not None and str(network) != existing.address_prefix:
            users = self._subnet_users(existing.id)
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
        subnet.extra = {k: v for k, v in props.items() if k not in _SUBNET_MODELLED}
        vnet.subnets[name.lower()] = subnet

        async def run() -> None:
            subnet.provisioning_state = "Succeeded"

        def rollback(error: ArmError) -> None:
            subnet.provisioning_state = "Failed"

        operation = self._begin(
            call, vnet, "subnets/write", subnet.id, vnet.location, run, rollback
        )
        return self._written(call, operation, existing is not None, self.subnet_body(vnet, subnet))

    async def delete_subnet(self, call: Call, vnet_name: str, name: str) -> Reply:
        """DELETE a subnet (refused while a NIC uses it)."""
        vnet = self.find_vnet(call, vnet_name)
        subnet = vnet.subnets.get(name.lower())
        if subnet is None:
            return Reply(204)
        if vnet.busy:
            assert vnet.pending is not None
            raise _another_operation(call, self.core.monitor_url(call, vnet.pending))
        users = self._subnet_users(subnet.id)
        if users:
            raise _subnet_in_use(subnet.name, users[0])
        subnet.provisioning_state = "Deleting"

        async def run() -> None:
            vnet.subnets.pop(name.lower(), None)

        operation = self._begin(call, vnet, "subnets/delete", subnet.id, vnet.location, run)
        return self.core.accepted(call, operation)

    # -- network interfaces ------------------------------------------------------------------

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
            vm = self.registry.vms.get(key(nic.vm_id))
            if vm is not None:
                properties["primary"] = any(
                    primary for nic_id, primary in vm.nics if key(nic_id) == key(nic.id)
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
        nic = self.registry.nics.get(key(self._nic_id(call, name)))
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
        parts = parse_id(subnet_id)
        vnet_name, subnet_name = parts.get("virtualnetworks"), parts.get("subnets")
        if vnet_name is None or subnet_name is None:
            return None
        vnet_id = subnet_id[: subnet_id.lower().rindex("/subnets/")]
        vnet = self.registry.vnets.get(key(vnet_id))
        if vnet is None:
            return None
        subnet = vnet.subnets.get(subnet_name.lower())
        return None if subnet is None else (vnet, subnet)

    def _used_ips(self, subnet_id: str, exclude: str) -> dict[str, str]:
        return {
            config.private_ip: nic.id
            for nic in self.registry.nics.values()
            if key(nic.id) != key(exclude)
            for config in nic.ip_configs
            if key(config.subnet_id) == key(subnet_id)
        }

    def _allocate(
        self,
        nic_id: str,
        config_name: str,
        subnet: SubnetRecord,
        spec: Mapping[str, Any],
        current: IpConfig | None,
    ) -> tuple[str, str]:
        network = ipaddress.ip_network(subnet.address_prefix)
        used = self._used_ips(subnet.id, nic_id)
        method = str(spec.get("privateIPAllocationMethod") or "Dynamic")
        method = "Static" if method.lower() == "static" else "Dynamic"
        config_id = f"{nic_id}/ipConfigurations/{config_name}"
        # Azure reserves the first four addresses of a subnet and its last one.
        first = int(network.network_address) + 4
        last = int(network.broadcast_address) - 1
        if method == "Static":
            text = str(required(spec, "privateIPAddress", "ipConfigurations.privateIPAddress"))
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise ArmError(
                    400, "InvalidPrivateIPAddress", f"The private IP address {text} is not valid."
                ) from None
            if address.version != network.version or not first <= int(address) <= last:
                raise ArmError(
                    400,
                    "PrivateIPAddressNotInSubnet",
                    f"IP configuration {config_id} is using the private IP address {text} which "
                    f"is not in the range of subnet {subnet.id}.",
                )
            if str(address) in used:
                raise ArmError(
                    400,
                    "PrivateIPAddressInUse",
                    f"IP configuration {config_id} is using the private IP address {text} which "
                    f"is already allocated to resource {used[str(address)]}.",
                )
            return str(address), method
        if current is not None and key(current.subnet_id) == key(subnet.id):
            return current.private_ip, method
        for number in range(first, min(last, first + len(used) + 1) + 1):
            candidate = str(type(network.network_address)(number))
            if candidate not in used:
                return candidate, method
        raise ArmError(
            400,
            "SubnetIsFull",
            f"Subnet {subnet.name} with address prefix {subnet.address_prefix} does not have "
            "enough capacity for 1 IP addresses.",
        )

    async def put_nic(self, call: Call, name: str) -> Reply:
        """PUT a network interface in an existing subnet."""
        body = await call.json()
        nic_id = self._nic_id(call, name)
        existing = self.registry.nics.get(key(nic_id))
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
            raise _another_operation(call, self.core.monitor_url(call, existing.pending))
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
            address, method = self._allocate(nic_id, config_name, found[1], config_props, current)
            if any(c.private_ip == address and key(c.subnet_id) == key(subnet_id) for c in configs):
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
        self.registry.nics[key(nic.id)] = nic

        async def run() -> None:
            nic.provisioning_state = "Succeeded"

        def rollback(error: ArmError) -> None:
            nic.provisioning_state = "Failed"

        operation = self._begin(
            call, nic, "networkInterfaces/write", nic.id, location, run, rollback
        )
        return self._written(call, operation, existing is not None, self.nic_body(nic))

    async def delete_nic(self, call: Call, name: str) -> Reply:
        """DELETE a network interface (refused while a VM uses it)."""
        nic = self.registry.nics.get(key(self._nic_id(call, name)))
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
            raise _another_operation(call, self.core.monitor_url(call, nic.pending))
        nic.provisioning_state = "Deleting"

        async def run() -> None:
            self.registry.nics.pop(key(nic.id), None)

        def rollback(error: ArmError) -> None:
            nic.provisioning_state = "Failed"

        operation = self._begin(
            call, nic, "networkInterfaces/delete", nic.id, nic.location, run, rollback
        )
        return self.core.accepted(call, operation)


_SUBNET_MODELLED: Final = frozenset(
    {"addressPrefix", "provisioningState", "ipConfigurations", "addressPrefixes"}
)


def _subnet_in_use(name: str, user: str) -> ArmError:
    return ArmError(
        400,
        "InUseSubnetCannotBeDeleted",
        f"Subnet {name} is in use by {user} and cannot be deleted. In order to delete the "
        "subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.",
    )


def _method_not_allowed(method: str) -> ArmError:
    return ArmError(
        405, "MethodNotAllowed", f"The requested method {method} is not allowed on this resource."
    )
