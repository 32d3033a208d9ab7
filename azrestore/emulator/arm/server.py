"""The Resource Manager simulator: an HTTPS server on 127.0.0.1 that the real azure-mgmt-compute
and azure-mgmt-network clients drive unchanged.

Requests go through: bearer-token check (401 with ``WWW-Authenticate`` as ARM answers),
``api-version`` check (any value is accepted and logged), routing, fault rules, then the
resource handlers (:mod:`.disks`, :mod:`.vms`, :mod:`.network`).  Long-running operations run
in the simulator's task group and are cancelled when it closes.

Internal endpoints (no token needed): ``GET /_emulator/state`` (the snapshot as JSON),
``GET /_emulator/log[?polls=0]``, ``GET|PUT /_emulator/faults`` (PUT ``{"rules": [spec...]}``
replaces the fault rules) and ``GET /_emulator/info``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import ssl
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import unquote

import anyio
import anyio.abc
import trustme
from aiohttp import web

from azrestore.emulator.arm.core import Call, Clock, Core, Reply, Route
from azrestore.emulator.arm.disks import DiskHandlers
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.faults import ArmFaultRule, RunCommandRule
from azrestore.emulator.arm.network import NetworkHandlers
from azrestore.emulator.arm.state import LogEntry, SimulatorState
from azrestore.emulator.arm.storage import DiskStorage, StorageConfig
from azrestore.emulator.arm.vms import VmHandlers
from azrestore.emulator.azurite import AZURITE_ACCOUNT
from azrestore.emulator.rules import RuleState
from azrestore.emulator.storage import SasRefusal
from azrestore.errors import InputError

__all__ = ["DEFAULT_SUBSCRIPTION", "ArmSimulator"]

DEFAULT_SUBSCRIPTION: Final = "00000000-0000-0000-0000-000000000000"
#: The resource group the emulated storage account lives in.
STORAGE_RESOURCE_GROUP: Final = "emulator"
_LOGIN: Final = "https://login.microsoftonline.com/common"
_CLOSE_TIMEOUT: Final = 10.0


def _unauthorized(code: str, message: str, description: str) -> ArmError:
    challenge = (
        f'Bearer authorization_uri="{_LOGIN}", error="invalid_token", '
        f'error_description="{description}"'
    )
    return ArmError(401, code, message, headers={"WWW-Authenticate": challenge})


class ArmSimulator:
    """An Azure Resource Manager simulator (async context manager).

    ``time_factor`` scales every simulated duration (0.01 in tests, 1.0 for a realistic
    demo).  ``storage`` says where managed disks' page blobs live (Azurite directly, and the
    gateway URL SAS URLs point at); without it disk blobs are unavailable (uploads, Import
    and grants fail with InternalExecutionError).  ``rules`` are :class:`ArmFaultRule`
    fault rules, ``run_command_rules`` script run commands, ``durations`` override simulated
    durations by operation name (see :data:`~azrestore.emulator.arm.core.DEFAULT_DURATIONS`).
    Any subscription id and any bearer token are accepted; ``subscription_id`` names the
    emulated storage account's subscription (:attr:`storage_account_id`).

    Operations run in a task group the simulator enters on start: use it as an async context
    manager (or call :meth:`start` and :meth:`aclose` from the same task).
    """

    def __init__(
        self,
        *,
        time_factor: float = 1.0,
        subscription_id: str = DEFAULT_SUBSCRIPTION,
        storage: StorageConfig | None = None,
        rules: Sequence[ArmFaultRule] = (),
        run_command_rules: Sequence[RunCommandRule] = (),
        durations: Mapping[str, float] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        delete_blobs_on_close: bool = True,
    ) -> None:
        if host != "127.0.0.1":
            raise ValueError("the ARM simulator only listens on 127.0.0.1")
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self.subscription_id = subscription_id
        account = storage.account_name if storage is not None else AZURITE_ACCOUNT
        self.storage_account_id = (
            f"/subscriptions/{subscription_id}/resourceGroups/{STORAGE_RESOURCE_GROUP}/providers/"
            f"Microsoft.Storage/storageAccounts/{account}"
        )
        self._storage = DiskStorage(storage) if storage is not None else None
        self._core = Core(
            clock=Clock(time_factor, durations),
            storage=self._storage,
            storage_account_id=self.storage_account_id,
            run_command_rules=tuple(run_command_rules),
        )
        self._disks = DiskHandlers(self._core)
        self._vms = VmHandlers(self._core)
        self._network = NetworkHandlers(self._core)
        self._rules: list[RuleState[ArmFaultRule]] = []
        self.set_rules(rules)
        self._delete_blobs = delete_blobs_on_close
        self._tmp: str | None = None
        self._ca_path: Path | None = None
        self._runner: web.ServerRunner | None = None
        self._task_group: anyio.abc.TaskGroup | None = None

    # -- properties --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The HTTPS port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("the ARM simulator is not started")
        return self._port

    @property
    def endpoint(self) -> str:
        """``https://127.0.0.1:PORT``: the ``base_url`` of the management clients."""
        return f"https://{self._host}:{self.port}"

    @property
    def ca_bundle(self) -> str:
        """The path of the throwaway CA's PEM (clients pass it as ``connection_verify``)."""
        if self._ca_path is None:
            raise RuntimeError("the ARM simulator is not started")
        return str(self._ca_path)

    @property
    def time_factor(self) -> float:
        """The factor simulated durations are scaled by."""
        return self._core.clock.time_factor

    # -- state, log, rules -------------------------------------------------------------------

    def state(self) -> SimulatorState:
        """A snapshot of all resources, run commands and operations."""
        return self._core.registry.snapshot()

    def log(self, *, polls: bool = True) -> tuple[LogEntry, ...]:
        """Requests served and operations ended, in order (``polls=False`` leaves out polls
        of operation monitors)."""
        entries = self._core.log()
        return entries if polls else tuple(e for e in entries if not e.is_poll)

    @property
    def rules(self) -> tuple[ArmFaultRule, ...]:
        """The current fault rules."""
        return tuple(state.rule for state in self._rules)

    def set_rules(self, rules: Sequence[ArmFaultRule]) -> None:
        """Replace the fault rules (their counters start from zero)."""
        self._rules = [RuleState(rule) for rule in rules]

    def add_rule(self, rule: ArmFaultRule) -> None:
        """Add one fault rule after the others."""
        self._rules.append(RuleState(rule))

    def set_run_command_rules(self, rules: Sequence[RunCommandRule]) -> None:
        """Replace the run command rules."""
        self._core.run_command_rules = [(rule, [0]) for rule in rules]

    def add_run_command_rule(self, rule: RunCommandRule) -> None:
        """Add a run command rule before the others (so it wins)."""
        self._core.run_command_rules.insert(0, (rule, [0]))

    def sas_check(self, operation: str, path: str, query: Mapping[str, str]) -> SasRefusal | None:
        """The gateway hook (:data:`~azrestore.emulator.gateway.SasCheck`): refuse SAS
        requests to disk blobs whose access was revoked or that a disk SAS does not allow."""
        return self._disks.sas_refusal(operation, path, query)

    async def wait_idle(self) -> None:
        """Wait until no long-running operation is in progress."""
        while any(op.running for op in self._core.registry.operations.values()):
            changed = self._core.changed
            with anyio.move_on_after(0.05):
                await changed.wait()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Make the CA, open storage, start the task group and listen."""
        if self._runner is not None:
            return
        self._tmp = tempfile.mkdtemp(prefix="azrestore-arm-")
        try:
            ca = trustme.CA(organization_name="azrestore emulator")
            cert = ca.issue_cert(self._host, "localhost")
            self._ca_path = Path(self._tmp) / "ca.pem"
            ca.cert_pem.write_to_path(str(self._ca_path))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(context)
            if self._storage is not None:
                await self._storage.open()
            task_group = anyio.create_task_group()
            await task_group.__aenter__()
            self._task_group = task_group
            self._core.attach(task_group)
            server = web.Server(self._handle, access_log=None)
            runner = web.ServerRunner(server, shutdown_timeout=2.0)
            await runner.setup()
            self._runner = runner
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self._host, self._requested_port))
                site = web.SockSite(runner, sock, ssl_context=context, backlog=256)
                await site.start()
            except BaseException:
                sock.close()
                raise
            self._port = sock.getsockname()[1]
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop listening, cancel running operations, delete disk blobs, remove the CA."""
        self._core.attach(None)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        task_group, self._task_group = self._task_group, None
        if task_group is not None:
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)
        if self._storage is not None:
            if self._delete_blobs:
                with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
                    for disk in list(self._core.registry.disks.values()):
                        if disk.container is not None:
                            with contextlib.suppress(Exception):
                                await self._storage.delete(disk.container)
            with anyio.CancelScope(shield=True):
                await self._storage.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._ca_path = None
        self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- requests ----------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        request_id = str(uuid.uuid4())
        segments = [unquote(s) for s in request.raw_path.split("?", 1)[0].split("/") if s]
        if segments and segments[0] == "_emulator":
            reply = await self._internal(request, segments[1:])
            return _response(reply, request_id)
        method = request.method.upper()
        path = request.path
        api_version = request.query.get("api-version")
        fault = False
        route: Route | None = None
        call: Call | None = None
        try:
            call = self._call(request, segments, api_version)
            route = self._route(call, segments)
            call.operation = route.operation
            call.resource_id = route.resource_id
            rule = self._pick_rule(route, method, path)
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
        self._core.record(
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

    def _call(self, request: web.BaseRequest, segments: list[str], api_version: str | None) -> Call:
        authorization = request.headers.get("Authorization")
        if authorization is None:
            raise _unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                "The authentication failed because of missing 'Authorization' header.",
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized(
                "InvalidAuthenticationToken",
                "The access token is invalid.",
                "The access token is invalid.",
            )
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
        host = request.host or f"{self._host}:{self.port}"
        return Call(
            request=request,
            method=request.method.upper(),
            path=request.path,
            query={k.lower(): v for k, v in request.query.items()},
            api_version=api_version,
            base_url=f"https://{host}",
            subscription=segments[1],
        )

    def _route(self, call: Call, segments: list[str]) -> Route:
        rest = segments[2:]
        lowered = [s.lower() for s in rest]
        if lowered[:1] == ["resourcegroups"] and len(rest) >= 2:
            call.resource_group = rest[1]
            if len(rest) == 2:
                return self._resource_group_route(call, rest[1])
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
            operation = self._core.find_operation(operation_id)
            c.resource_id = operation.resource_id
            c.operation_id = operation.id
            return self._core.poll(operation, location=location, call=c)

        return Route("operations/result" if location else "operations/poll", poll, None)

    def _resource_group_route(self, call: Call, name: str) -> Route:
        groups = self._core.registry.resource_groups
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

    def _pick_rule(self, route: Route, method: str, path: str) -> ArmFaultRule | None:
        chosen: RuleState[ArmFaultRule] | None = None
        for state in self._rules:
            if not state.rule.matches(
                route.operation, method, path, starts_operation=route.starts_operation
            ):
                continue
            if state.decide() and chosen is None:
                chosen = state
                state.fired += 1
        return chosen.rule if chosen is not None else None

    # -- internal endpoints ------------------------------------------------------------------

    async def _internal(self, request: web.BaseRequest, rest: list[str]) -> Reply:
        what = rest[0] if len(rest) == 1 else ""
        method = request.method.upper()
        if what == "state" and method == "GET":
            return Reply(200, self.state().to_json())
        if what == "log" and method == "GET":
            polls = request.query.get("polls", "1").lower() not in ("0", "false", "no")
            entries = self.log(polls=polls)
            return Reply(200, {"value": [_log_json(entry) for entry in entries]})
        if what == "info" and method == "GET":
            return Reply(
                200,
                {
                    "arm_endpoint": self.endpoint,
                    "ca_bundle": self.ca_bundle,
                    "subscription_id": self.subscription_id,
                    "storage_account_id": self.storage_account_id,
                    "time_factor": self.time_factor,
                },
            )
        if what == "faults" and method == "GET":
            return Reply(200, {"rules": [asdict(rule) for rule in self.rules]})
        if what == "faults" and method == "PUT":
            try:
                data = json.loads(await request.read() or b"{}")
                specs = data.get("rules", [])
                rules = [ArmFaultRule.from_spec(str(spec)) for spec in specs]
            except (ValueError, AttributeError, InputError) as exc:
                return Reply(400, {"error": {"code": "InvalidFaultSpec", "message": str(exc)}})
            self.set_rules(rules)
            return Reply(200, {"rules": [asdict(rule) for rule in self.rules]})
        return Reply(404, {"error": {"code": "NotFound", "message": "unknown emulator endpoint"}})


def _log_json(entry: LogEntry) -> dict[str, Any]:
    data = asdict(entry)
    data["time"] = entry.time.isoformat()
    return data


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
