"""One request as the resource handlers see it (:class:`Call`), what it routes to
(:class:`Route`) and the answer a handler gives (:class:`Reply`)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from azrestore.emulator.arm.errors import ArmError

__all__ = ["Call", "Handler", "Reply", "Route", "bind", "method_not_allowed", "scope_prefix"]


@dataclass
class Reply:
    """An answer to one request (``body`` None: no body)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One ARM request as the handlers see it."""

    request: web.BaseRequest
    method: str
    path: str
    query: Mapping[str, str]
    """Query parameters by lower-case name."""
    api_version: str
    base_url: str
    subscription: str
    resource_group: str | None = None
    operation: str = ""
    resource_id: str | None = None
    fault: ArmError | None = None
    operation_id: str | None = None
    _body: Any = None
    _read: bool = False

    async def json(self) -> dict[str, Any]:
        """The request body as a JSON object (ARM's InvalidRequestContent otherwise)."""
        if not self._read:
            self._read = True
            raw = await self.request.read()
            if not raw.strip():
                self._body = {}
            else:
                try:
                    self._body = json.loads(raw)
                except ValueError as exc:
                    raise ArmError(
                        400,
                        "InvalidRequestContent",
                        f"The request content was invalid and could not be deserialized: {exc}",
                    ) from None
        if not isinstance(self._body, dict):
            raise ArmError(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: "
                "expected a JSON object.",
            )
        return self._body


Handler = Callable[[Call], Awaitable[Reply]]
"""A resource handler: answers one routed request."""


@dataclass
class Route:
    """What a request is: its operation name, resource and handler."""

    operation: str
    handler: Handler
    resource_id: str | None = None
    starts_operation: bool = False


def bind(
    fn: Callable[[Call, str], Awaitable[Reply]], name: str
) -> Callable[[Call], Awaitable[Reply]]:
    """A handler for the resource named ``name`` from one that takes the name."""
    return lambda call: fn(call, name)


def method_not_allowed(method: str) -> ArmError:
    """405 MethodNotAllowed for a method a resource does not answer."""
    return ArmError(
        405, "MethodNotAllowed", f"The requested method {method} is not allowed on this resource."
    )


def scope_prefix(call: Call) -> str:
    """The lower-case id prefix of the subscription or resource group a list call names."""
    prefix = f"/subscriptions/{call.subscription}/".lower()
    if call.resource_group is not None:
        prefix += f"resourcegroups/{call.resource_group}/".lower()
    return prefix
