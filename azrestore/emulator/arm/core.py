"""What every resource handler shares: simulated time, the request context, replies, the
long-running operation engine and the log.

Long-running operations follow what azure-core's ARM polling expects
(``azure/core/polling/base_polling.py``, ``azure/mgmt/core/polling/arm_polling.py``):

- the first answer carries ``Azure-AsyncOperation`` (the status monitor), plus ``Location``
  for POST and DELETE (and a disk PUT), plus ``Retry-After``;
- the status monitor answers 200 ``{"name", "status": "InProgress"|"Succeeded"|"Failed",
  "startTime", "endTime", "error"}`` with ``Retry-After`` while in progress;
- the ``Location`` URL answers 202 until the operation ends, then 200 with the result body
  (or an empty body), or the operation's error status and body.

The SDK reads the initial ``Retry-After`` as an integer, so that one is whole seconds; the
monitors' ``Retry-After`` is the simulated interval times the time factor, written as a
decimal when it has a fraction (azure-core parses it as a float; 0 would mean "use your
own 30 s default", so it is never 0).
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import anyio
import anyio.abc
from aiohttp import web

from azrestore.emulator.arm.errors import ArmError, internal_execution_error, missing_parameter
from azrestore.emulator.arm.faults import RunCommandRule, format_seconds
from azrestore.emulator.arm.state import LogEntry, Operation, Registry
from azrestore.emulator.arm.storage import DiskStorage

__all__ = ["DEFAULT_DURATIONS", "Call", "Clock", "Core", "Reply", "Route"]

_log = logging.getLogger("azrestore.emulator.arm")

#: Simulated seconds each operation takes (at time factor 1), shaped like Azure's.
DEFAULT_DURATIONS: Final[Mapping[str, float]] = {
    "disks/write": 3.0,
    "disks/import": 10.0,
    "disks/update": 2.0,
    "disks/delete": 3.0,
    "disks/beginGetAccess": 3.0,
    "disks/endGetAccess": 4.0,
    "virtualMachines/create": 45.0,
    "virtualMachines/write": 15.0,
    "virtualMachines/update": 15.0,
    "virtualMachines/start": 30.0,
    "virtualMachines/powerOff": 15.0,
    "virtualMachines/deallocate": 45.0,
    "virtualMachines/restart": 30.0,
    "virtualMachines/delete": 40.0,
    "virtualMachines/runCommand": 25.0,
    # From a start's end until the guest agent reports Ready (prepared OS disks only).
    "virtualMachines/agentReady": 30.0,
    # How long a run command waits for an agent that never reports before it fails.
    "virtualMachines/agentTimeout": 900.0,
    "networkInterfaces/write": 1.0,
    "networkInterfaces/delete": 2.0,
    "virtualNetworks/write": 3.0,
    "virtualNetworks/delete": 3.0,
    "subnets/write": 2.0,
    "subnets/delete": 2.0,
}

#: Simulated seconds between polls that each provider's monitors ask for.
POLL_INTERVALS: Final[Mapping[str, float]] = {
    "disks": 2.0,
    "compute": 10.0,
    "network": 10.0,
}
_MIN_RETRY_AFTER: Final = 0.01
_LOG_LIMIT: Final = 100_000


class Clock:
    """Simulated time: Azure-shaped durations scaled by ``time_factor``."""

    def __init__(self, time_factor: float, durations: Mapping[str, float] | None = None) -> None:
        if not time_factor > 0:
            raise ValueError("time_factor must be positive")
        self.time_factor = time_factor
        self.durations = {**DEFAULT_DURATIONS, **(durations or {})}
        for name, seconds in self.durations.items():
            if seconds < 0:
                raise ValueError(f"duration of {name} must not be negative")
        self._started = time.monotonic()

    def duration(self, name: str) -> float:
        """Real seconds the named operation takes."""
        return self.durations.get(name, 1.0) * self.time_factor

    def scale(self, simulated: float) -> float:
        """Real seconds for ``simulated`` seconds."""
        return simulated * self.time_factor

    def retry_after(self, provider: str) -> float:
        """Real seconds a monitor of ``provider`` asks the client to wait."""
        return max(_MIN_RETRY_AFTER, POLL_INTERVALS.get(provider, 10.0) * self.time_factor)

    @staticmethod
    def now() -> datetime:
        """Wall-clock time (UTC), for timestamps in bodies."""
        return datetime.now(UTC)

    @staticmethod
    def monotonic() -> float:
        """Monotonic seconds, for deadlines."""
        return time.monotonic()

    @property
    def elapsed(self) -> float:
        """Real seconds since the clock was made."""
        return time.monotonic() - self._started


def iso(moment: datetime | None) -> str | None:
    """ARM's timestamp format (ISO 8601 with offset)."""
    return None if moment is None else moment.isoformat()


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


def location_key(location: str) -> str:
    """ARM's normalised location name (``West US`` -> ``westus``)."""
    return location.replace(" ", "").lower()


class Core:
    """State, time, storage, rules, the operation engine and the log of one simulator."""

    def __init__(
        self,
        *,
        clock: Clock,
        storage: DiskStorage | None,
        storage_account_id: str,
        run_command_rules: tuple[RunCommandRule, ...] = (),
    ) -> None:
        self.clock = clock
        self.storage = storage
        self.storage_account_id = storage_account_id
        self.registry = Registry()
        self.run_command_rules: list[tuple[RunCommandRule, list[int]]] = [
            (rule, [0]) for rule in run_command_rules
        ]
        self._log: deque[LogEntry] = deque(maxlen=_LOG_LIMIT)
        self._seq = 0
        self._task_group: anyio.abc.TaskGroup | None = None
        self.changed = anyio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def attach(self, task_group: anyio.abc.TaskGroup | None) -> None:
        """Run operations in ``task_group`` (None: no new operations can start)."""
        self._task_group = task_group

    # -- log ---------------------------------------------------------------------------------

    def record(self, **fields: Any) -> None:
        """Append a log entry."""
        self._seq += 1
        self._log.append(
            LogEntry(seq=self._seq, time=self.clock.now(), elapsed=self.clock.elapsed, **fields)
        )

    def log(self) -> tuple[LogEntry, ...]:
        """The log, oldest first."""
        return tuple(self._log)

    def notify(self) -> None:
        """Wake whoever waits for a state change (run commands waiting for an agent)."""
        self.changed.set()
        self.changed = anyio.Event()

    # -- long-running operations -------------------------------------------------------------

    def begin(
        self,
        call: Call,
        *,
        name: str,
        resource_id: str,
        location: str,
        provider: str,
        run: Callable[[], Awaitable[Any]],
        rollback: Callable[[ArmError], None] | None = None,
        delay: float | None = None,
        has_output: bool = False,
    ) -> Operation:
        """Start a long-running operation: wait ``delay`` real seconds (by default the
        operation's simulated duration), then ``run()`` (its return value is the result the
        Location URL answers).  An ArmError from ``run`` or an injected ``fail`` fault ends
        the operation Failed after ``rollback(error)``.
        """
        task_group = self._task_group
        if task_group is None:
            raise ArmError(503, "ServiceUnavailable", "The simulator is shutting down.")
        namespace = "Microsoft.Network" if provider == "network" else "Microsoft.Compute"
        operation = Operation(
            id=str(uuid.uuid4()),
            name=name,
            resource_id=resource_id,
            location=location_key(location),
            namespace=namespace,
            monitor_kind="DiskOperations" if provider == "disks" else "operations",
            api_version=call.api_version,
            started=self.clock.now(),
            retry_after=self.clock.retry_after(provider),
            has_output=has_output,
        )
        self.registry.operations[operation.id] = operation
        wait = self.clock.duration(name) if delay is None else delay
        task_group.start_soon(self._drive, operation, run, rollback, wait, call.fault)
        return operation

    async def _drive(
        self,
        operation: Operation,
        run: Callable[[], Awaitable[Any]],
        rollback: Callable[[ArmError], None] | None,
        wait: float,
        fault: ArmError | None,
    ) -> None:
        try:
            if fault is not None:
                # An injected failure takes the operation's usual time before it shows.
                await anyio.sleep(max(wait, self.clock.duration(operation.name)))
                raise fault
            await anyio.sleep(wait)
            operation.result = await run()
            operation.status = "Succeeded"
        except ArmError as error:
            self._fail(operation, error, rollback)
        except Exception:
            _log.exception("operation %s (%s) crashed", operation.name, operation.id)
            self._fail(operation, internal_execution_error(), rollback)
        operation.ended = self.clock.now()
        self.record(
            kind="operation",
            method=None,
            path="",
            resource_id=operation.resource_id,
            operation=operation.name,
            api_version=operation.api_version,
            status=None,
            outcome=operation.status,
            operation_id=operation.id,
            error_code=operation.error.code if operation.error else None,
            fault=fault is not None,
        )
        self.notify()

    @staticmethod
    def _fail(
        operation: Operation, error: ArmError, rollback: Callable[[ArmError], None] | None
    ) -> None:
        if rollback is not None:
            rollback(error)
        operation.status = "Failed"
        operation.error = error

    def monitor_url(self, call: Call, operation: Operation, *, location: bool = False) -> str:
        """The status monitor (Azure-AsyncOperation) or Location URL of an operation."""
        base = (
            f"{call.base_url}/subscriptions/{call.subscription}/providers/"
            f"{operation.namespace}/locations/{operation.location}"
        )
        query = f"api-version={operation.api_version}"
        if location and operation.namespace == "Microsoft.Network":
            return f"{base}/operationResults/{operation.id}?{query}"
        url = f"{base}/{operation.monitor_kind}/{operation.id}?{query}"
        return f"{url}&monitor=true" if location else url

    def lro_headers(
        self, call: Call, operation: Operation, *, location: bool = True
    ) -> dict[str, str]:
        """Headers of the first answer of a long-running operation."""
        headers = {
            "Azure-AsyncOperation": self.monitor_url(call, operation),
            # The SDK deserialises this one as an int.
            "Retry-After": str(max(1, math.ceil(operation.retry_after))),
        }
        if location:
            headers["Location"] = self.monitor_url(call, operation, location=True)
        return headers

    def accepted(self, call: Call, operation: Operation) -> Reply:
        """202 Accepted for a POST action or DELETE."""
        return Reply(202, None, self.lro_headers(call, operation))

    def status_body(self, operation: Operation) -> dict[str, Any]:
        """The status monitor's body."""
        body: dict[str, Any] = {
            "startTime": iso(operation.started),
            "status": operation.status,
            "name": operation.id,
        }
        if operation.ended is not None:
            body["endTime"] = iso(operation.ended)
        if operation.error is not None:
            body["error"] = operation.error.body()
        if operation.status == "Succeeded" and operation.has_output and operation.result:
            body["properties"] = {"output": operation.result}
        return body

    def poll(self, operation: Operation, *, location: bool, call: Call) -> Reply:
        """Answer a status monitor (``location`` False) or Location URL poll."""
        retry = {"Retry-After": format_seconds(operation.retry_after)}
        if not location:
            headers = retry if operation.running else {}
            return Reply(200, self.status_body(operation), headers)
        if operation.running:
            return Reply(
                202, None, {"Location": self.monitor_url(call, operation, location=True), **retry}
            )
        if operation.error is not None:
            error = operation.error
            return Reply(error.status, {"error": error.body()})
        return Reply(200, operation.result)

    def find_operation(self, operation_id: str) -> Operation:
        """An operation by id (404 when unknown)."""
        operation = self.registry.operations.get(operation_id.lower())
        if operation is None:
            raise ArmError(
                404,
                "NotFound",
                f"The operation '{operation_id}' was not found.",
            )
        return operation

    # -- run command rules -------------------------------------------------------------------

    def pick_run_command_rule(
        self, matches: Callable[[RunCommandRule], bool]
    ) -> RunCommandRule | None:
        """The first rule that matches and may still apply (counting its use)."""
        for rule, used in self.run_command_rules:
            if rule.times is not None and used[0] >= rule.times:
                continue
            if matches(rule):
                used[0] += 1
                return rule
        return None


def scope_prefix(call: Call) -> str:
    """The lower-case id prefix of the subscription or resource group a list call names."""
    prefix = f"/subscriptions/{call.subscription}/".lower()
    if call.resource_group is not None:
        prefix += f"resourcegroups/{call.resource_group}/".lower()
    return prefix


def new_id() -> str:
    """A new lower-case GUID."""
    return str(uuid.uuid4())


@dataclass
class Route:
    """What a request is: its operation name, resource and handler."""

    operation: str
    handler: Callable[[Call], Awaitable[Reply]]
    resource_id: str | None = None
    starts_operation: bool = False


def arm_id(subscription: str, resource_group: str, namespace: str, *parts: str) -> str:
    """``/subscriptions/S/resourceGroups/RG/providers/NS/type/name[/type/name...]``."""
    tail = "/".join(parts)
    group = f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
    return f"{group}/providers/{namespace}/{tail}"


def parse_id(resource_id: str) -> dict[str, str]:
    """The parts of a resource id by lower-case segment name (``subscriptions``,
    ``resourcegroups``, ``providers``, then each ``type`` -> name)."""
    segments = [s for s in resource_id.strip("/").split("/") if s]
    parts: dict[str, str] = {}
    for index in range(0, len(segments) - 1, 2):
        parts[segments[index].lower()] = segments[index + 1]
    return parts


def required(body: Mapping[str, Any], name: str, path: str) -> Any:
    """``body[name]``, or Azure's InvalidParameter "Required parameter ... is missing"."""
    value = body.get(name)
    if value is None or value == "":
        raise missing_parameter(path)
    return value


def location_of(body: Mapping[str, Any]) -> str:
    """The resource's location (400 LocationRequired without one)."""
    location = body.get("location")
    if not isinstance(location, str) or not location.strip():
        raise ArmError(
            400, "LocationRequired", "The location property is required for this definition."
        )
    return location


def tags_of(body: Mapping[str, Any]) -> dict[str, str]:
    """The ``tags`` object (strings only)."""
    tags = body.get("tags") or {}
    if not isinstance(tags, dict):
        raise ArmError(400, "InvalidRequestContent", "The 'tags' property must be an object.")
    return {str(k): str(v) for k, v in tags.items()}
