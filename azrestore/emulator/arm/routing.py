"""Routing of ARM requests: the subscription, resource group and provider in the URL path
pick the handler (disks, virtual machines, network, resource groups, operation monitors)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from azrestore.emulator.arm.calls import Call, Reply, Route
from azrestore.emulator.arm.disks.routes import DiskHandlers
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.network.routes import NetworkHandlers
from azrestore.emulator.arm.operations import OperationEngine
from azrestore.emulator.arm.resource_groups import ResourceGroupHandlers
from azrestore.emulator.arm.vms.routes import VmHandlers

__all__ = ["ArmRouter"]


class ArmRouter:
    """Turns a request into a :class:`Call` and finds its :class:`Route`."""

    def __init__(
        self,
        *,
        operations: OperationEngine,
        disks: DiskHandlers,
        vms: VmHandlers,
        network: NetworkHandlers,
        resource_groups: ResourceGroupHandlers,
    ) -> None:
        self._operations = operations
        self._disks = disks
        self._vms = vms
        self._network = network
        self._resource_groups = resource_groups

    def call(
        self,
        request: web.BaseRequest,
        segments: list[str],
        api_version: str | None,
        default_host: Callable[[], str],
    ) -> Call:
        """The :class:`Call` for an ARM request (after its api-version check; the pipeline
        checked its token); ``default_host()`` stands in for a request without a Host
        header."""
        if not api_version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if len(segments) < 2 or segments[0].lower() != "subscriptions":
            raise ArmError(
                404, "NotFound", f"The requested path '{request.path}' is not supported."
            )
        host = request.host or default_host()
        return Call(
            request=request,
            method=request.method.upper(),
            path=request.path,
            query={k.lower(): v for k, v in request.query.items()},
            api_version=api_version,
            base_url=f"https://{host}",
            subscription=segments[1],
        )

    def route(self, call: Call, segments: list[str]) -> Route:
        """The route of a call whose URL path is ``segments``."""
        rest = segments[2:]
        lowered = [s.lower() for s in rest]
        if lowered[:1] == ["resourcegroups"] and len(rest) >= 2:
            call.resource_group = rest[1]
            if len(rest) == 2:
                return self._resource_groups.route(call, rest[1])
            if lowered[2] == "providers" and len(rest) >= 5:
                return self._provider_route(call, rest[3], rest[4:])
        elif lowered[:1] == ["providers"] and len(rest) >= 3:
            namespace, tail = rest[1], rest[2:]
            tail_lower = [s.lower() for s in tail]
            if tail_lower[0] == "locations" and len(tail) == 4:
                return self._monitor_route(call, tail_lower[2], tail[3])
            if len(tail) == 1:
                return self._provider_route(call, namespace, tail)
        raise ArmError(404, "NotFound", f"The requested path '{call.path}' is not supported.")

    def _provider_route(self, call: Call, namespace: str, rest: list[str]) -> Route:
        resource_type = rest[0]
        name = rest[1] if len(rest) > 1 else None
        child = rest[2:]
        if name is None and call.method != "GET":
            raise ArmError(405, "MethodNotAllowed", f"{call.method} is not allowed on a list.")
        ns, kind = namespace.lower(), resource_type.lower()
        if ns == "microsoft.compute" and kind == "disks":
            return self._disks.route(call, name, child)
        if ns == "microsoft.compute" and kind == "virtualmachines":
            return self._vms.route(call, name, child)
        if ns == "microsoft.network":
            return self._network.route(call, resource_type, name, child)
        raise ArmError(
            404,
            "InvalidResourceType",
            f"The resource type '{resource_type}' could not be found in the namespace "
            f"'{namespace}' for api version '{call.api_version}'.",
        )

    def _monitor_route(self, call: Call, kind: str, operation_id: str) -> Route:
        if kind not in ("operations", "diskoperations", "operationresults"):
            raise ArmError(404, "NotFound", f"Unknown operation monitor '{kind}'.")
        location = kind == "operationresults" or call.query.get("monitor", "").lower() == "true"

        async def poll(c: Call) -> Reply:
            operation = self._operations.find_operation(operation_id)
            c.resource_id = operation.resource_id
            c.operation_id = operation.id
            return self._operations.poll(operation, location=location, call=c)

        return Route("operations/result" if location else "operations/poll", poll, None)
