"""Routing of ``Microsoft.Network`` requests to the virtual network, subnet and network
interface handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from azrestore.emulator.arm.calls import Call, Reply, Route, bind, method_not_allowed
from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.network.nics import NicHandlers
from azrestore.emulator.arm.network.resources import NS
from azrestore.emulator.arm.network.subnets import SubnetHandlers
from azrestore.emulator.arm.network.vnets import VnetHandlers
from azrestore.emulator.arm.resource_ids import arm_id

__all__ = ["NetworkHandlers"]


class NetworkHandlers:
    """Request handlers for virtual networks, subnets and network interfaces."""

    def __init__(self, core: Core) -> None:
        self.vnets = VnetHandlers(core)
        self.subnets = SubnetHandlers(core)
        self.nics = NicHandlers(core)

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
                return Route("networkInterfaces/list", self.nics.list_nics)
            raise method_not_allowed(method)
        if child:
            raise ArmError(404, "NotFound", f"Resource {call.path} not found.")
        assert call.resource_group is not None
        rid = arm_id(call.subscription, call.resource_group, NS, "networkInterfaces", name)
        nics = self.nics
        if method == "GET":
            return Route("networkInterfaces/read", bind(nics.get_nic, name), rid)
        if method == "PUT":
            return Route(
                "networkInterfaces/write", bind(nics.put_nic, name), rid, starts_operation=True
            )
        if method == "DELETE":
            return Route(
                "networkInterfaces/delete", bind(nics.delete_nic, name), rid, starts_operation=True
            )
        raise method_not_allowed(method)

    def _route_vnet(self, call: Call, name: str | None, child: list[str], method: str) -> Route:
        if name is None:
            if method == "GET":
                return Route("virtualNetworks/list", self.vnets.list_vnets)
            raise method_not_allowed(method)
        assert call.resource_group is not None
        rid = arm_id(call.subscription, call.resource_group, NS, "virtualNetworks", name)
        if not child:
            vnets = self.vnets
            if method == "GET":
                return Route("virtualNetworks/read", bind(vnets.get_vnet, name), rid)
            if method == "PUT":
                return Route(
                    "virtualNetworks/write", bind(vnets.put_vnet, name), rid, starts_operation=True
                )
            if method == "DELETE":
                return Route(
                    "virtualNetworks/delete",
                    bind(vnets.delete_vnet, name),
                    rid,
                    starts_operation=True,
                )
            raise method_not_allowed(method)
        if child[0].lower() != "subnets" or len(child) > 2:
            raise ArmError(404, "NotFound", f"Resource {call.path} not found.")
        if len(child) == 1:
            if method == "GET":
                return Route("subnets/list", bind(self.subnets.list_subnets, name), rid)
            raise method_not_allowed(method)
        subnet = child[1]
        sid = f"{rid}/subnets/{subnet}"

        def bind2(
            fn: Callable[[Call, str, str], Awaitable[Reply]],
        ) -> Callable[[Call], Awaitable[Reply]]:
            return lambda c: fn(c, name, subnet)

        subnets = self.subnets
        if method == "GET":
            return Route("subnets/read", bind2(subnets.get_subnet), sid)
        if method == "PUT":
            return Route("subnets/write", bind2(subnets.put_subnet), sid, starts_operation=True)
        if method == "DELETE":
            return Route("subnets/delete", bind2(subnets.delete_subnet), sid, starts_operation=True)
        raise method_not_allowed(method)
