"""The long-running operation engine: start an operation, drive it to its end in the
simulator's task group, and answer its status monitor and Location URL.

Long-running operations follow what azure-core's ARM polling expects
(``azure/core/polling/base_polling.py``, ``azure/mgmt/core/polling/arm_polling.py``):

- the first answer carries ``Azure-AsyncOperation`` (the status monitor), plus ``Location``
  for POST and DELETE (and a disk PUT), plus ``Retry-After``;
- the status monitor answers 200 ``{"name", "status": "InProgress"|"Succeeded"|"Failed",
  "startTime", "endTime", "error"}`` with ``Retry-After`` while in progress;
- the ``Location`` URL answers 202 until the operation ends, then 200 with the result body
  (or an empty body), or the operation's error status and body.

The timing of ``Retry-After`` is :mod:`.clock`'s.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NotRequired, TypedDict, Unpack

import anyio
import anyio.abc

from azrestore.emulator.arm.calls import Call, Reply
from azrestore.emulator.arm.clock import Clock, format_seconds, iso
from azrestore.emulator.arm.errors import ArmError, internal_execution_error
from azrestore.emulator.arm.log import SimulatorLog
from azrestore.emulator.arm.resource_ids import location_key
from azrestore.emulator.arm.state.operations import Operation
from azrestore.emulator.arm.state.resource import ResourceRecord

__all__ = ["OperationEngine", "OperationOptions"]

_log = logging.getLogger("azrestore.emulator.arm")


class OperationOptions(TypedDict):
    """What an operation on a resource is besides the resource (see
    :meth:`OperationEngine.begin`)."""

    name: str
    provider: str
    run: Callable[[], Awaitable[Any]]
    rollback: NotRequired[Callable[[ArmError], None] | None]
    delay: NotRequired[float | None]
    has_output: NotRequired[bool]


class OperationEngine:
    """Starts long-running operations, runs them and answers their monitors.

    ``operations`` is the registry's table of operations by id; ``on_change`` is called
    whenever an operation ends (it wakes whoever waits for a state change).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        operations: dict[str, Operation],
        log: SimulatorLog,
        on_change: Callable[[], None],
    ) -> None:
        self._clock = clock
        self._operations = operations
        self._log = log
        self._on_change = on_change
        self._task_group: anyio.abc.TaskGroup | None = None

    def attach(self, task_group: anyio.abc.TaskGroup | None) -> None:
        """Run operations in ``task_group`` (None: no new operations can start)."""
        self._task_group = task_group

    @property
    def any_running(self) -> bool:
        """Whether any operation is still in progress."""
        return any(op.running for op in self._operations.values())

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
            started=self._clock.now(),
            retry_after=self._clock.retry_after(provider),
            has_output=has_output,
        )
        self._operations[operation.id] = operation
        wait = self._clock.duration(name) if delay is None else delay
        task_group.start_soon(self._drive, operation, run, rollback, wait, call.fault)
        return operation

    def begin_on(
        self, call: Call, resource: ResourceRecord, **options: Unpack[OperationOptions]
    ) -> Operation:
        """:meth:`begin` an operation on ``resource`` and make it the resource's pending one."""
        operation = self.begin(call, resource_id=resource.id, location=resource.location, **options)
        resource.pending = operation
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
                await anyio.sleep(max(wait, self._clock.duration(operation.name)))
                raise fault
            await anyio.sleep(wait)
            operation.result = await run()
            operation.status = "Succeeded"
        except ArmError as error:
            self._fail(operation, error, rollback)
        except Exception:
            _log.exception("operation %s (%s) crashed", operation.name, operation.id)
            self._fail(operation, internal_execution_error(), rollback)
        operation.ended = self._clock.now()
        self._log.record(
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
        self._on_change()

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
        operation = self._operations.get(operation_id.lower())
        if operation is None:
            raise ArmError(
                404,
                "NotFound",
                f"The operation '{operation_id}' was not found.",
            )
        return operation
