"""The path of one request through the simulator: the token check (:mod:`.auth`; the
simulator's own endpoints need the token too), the ``api-version`` check and routing
(:mod:`.routing`), fault rules, the resource handler, then the log entry and the HTTP
answer with ARM's headers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from urllib.parse import unquote

import anyio
from aiohttp import web

from azrestore.emulator.arm.auth import BearerTokenCheck
from azrestore.emulator.arm.calls import Call, Reply, Route
from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.emulator_endpoints import EmulatorEndpoints
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.faults import ArmFaultRules
from azrestore.emulator.arm.routing import ArmRouter

__all__ = ["RequestPipeline"]


class RequestPipeline:
    """Serves the simulator's HTTP requests (the aiohttp handler)."""

    def __init__(
        self,
        *,
        core: Core,
        router: ArmRouter,
        fault_rules: ArmFaultRules,
        endpoints: EmulatorEndpoints,
        default_host: Callable[[], str],
        auth: BearerTokenCheck,
    ) -> None:
        self._auth = auth
        self._core = core
        self._router = router
        self._fault_rules = fault_rules
        self._endpoints = endpoints
        self._default_host = default_host

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Serve one request."""
        request_id = str(uuid.uuid4())
        segments = [unquote(s) for s in request.raw_path.split("?", 1)[0].split("/") if s]
        if segments and segments[0] == "_emulator":
            try:
                self._auth.check(request)
                reply = await self._endpoints.answer(request, segments[1:])
            except ArmError as error:
                reply = Reply(error.status, {"error": error.body()}, dict(error.headers))
            return _response(reply, request_id)
        method = request.method.upper()
        path = request.path
        api_version = request.query.get("api-version")
        fault = False
        route: Route | None = None
        call: Call | None = None
        try:
            self._auth.check(request)
            call = self._router.call(request, segments, api_version, self._default_host)
            route = self._router.route(call, segments)
            call.operation = route.operation
            call.resource_id = route.resource_id
            rule = self._fault_rules.pick(
                route.operation, method, path, starts_operation=route.starts_operation
            )
            if rule is not None:
                fault = rule.action != "delay"
                if rule.action == "status":
                    raise rule.error()
                if rule.action == "delay":
                    await anyio.sleep(rule.delay)
                else:
                    call.fault = rule.error()
            reply = await route.handler(call)
            if method == "PUT" and call.resource_group is not None and reply.status < 300:
                self._core.registry.resource_groups.setdefault(
                    call.resource_group.lower(), (call.resource_group, "")
                )
            outcome = (
                "accepted"
                if reply.status in (201, 202) or "Azure-AsyncOperation" in (reply.headers)
                else "ok"
            )
            error_code = None
        except ArmError as error:
            reply = Reply(error.status, {"error": error.body()}, dict(error.headers))
            outcome = error.code
            error_code = error.code
        operation_id = call.operation_id if call is not None else None
        monitor = reply.headers.get("Azure-AsyncOperation")
        if monitor is not None:
            operation_id = monitor.split("?", 1)[0].rsplit("/", 1)[-1]
        self._core.log.record(
            kind="request",
            method=method,
            path=path,
            resource_id=call.resource_id if call is not None else None,
            operation=route.operation if route is not None else "unknown",
            api_version=api_version,
            status=reply.status,
            outcome=outcome,
            fault=fault,
            operation_id=operation_id,
            error_code=error_code,
        )
        return _response(reply, request_id)


def _response(reply: Reply, request_id: str) -> web.Response:
    headers = {
        "x-ms-request-id": request_id,
        "x-ms-correlation-request-id": request_id,
        "Cache-Control": "no-cache",
        "Pragma": "no-cache",
        "Expires": "-1",
        **reply.headers,
    }
    if reply.body is None:
        return web.Response(status=reply.status, headers=headers)
    return web.Response(
        status=reply.status,
        body=json.dumps(reply.body).encode(),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )
