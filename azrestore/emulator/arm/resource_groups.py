"""Resource groups: enough for a client to create one (PUT) and check it exists (GET, HEAD).
The simulator also records the group of every resource a successful PUT writes."""

from __future__ import annotations

from typing import Any

from azrestore.emulator.arm.calls import Call, Reply, Route
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.state.registry import Registry

__all__ = ["ResourceGroupHandlers"]


class ResourceGroupHandlers:
    """Request handlers for ``/subscriptions/S/resourceGroups/NAME``."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def route(self, call: Call, name: str) -> Route:
        """The route of a request for the resource group ``name``."""
        groups = self._registry.resource_groups
        rid = f"/subscriptions/{call.subscription}/resourceGroups/{name}"

        def body(location: str) -> dict[str, Any]:
            return {
                "id": rid,
                "name": name,
                "type": "Microsoft.Resources/resourceGroups",
                "location": location or "westus",
                "properties": {"provisioningState": "Succeeded"},
            }

        async def get(call: Call) -> Reply:
            entry = groups.get(name.lower())
            if entry is None:
                raise ArmError(
                    404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found."
                )
            return Reply(200, body(entry[1]) if call.method == "GET" else None, {})

        async def put(call: Call) -> Reply:
            data = await call.json()
            location = data.get("location")
            if not isinstance(location, str) or not location:
                raise ArmError(
                    400,
                    "LocationRequired",
                    "The location property is required for this definition.",
                )
            existed = name.lower() in groups
            groups[name.lower()] = (name, location)
            return Reply(200 if existed else 201, body(location))

        if call.method in ("GET", "HEAD"):
            return Route("resourceGroups/read", get, rid)
        if call.method == "PUT":
            return Route("resourceGroups/write", put, rid)
        raise ArmError(405, "MethodNotAllowed", f"{call.method} is not allowed on resource groups.")
