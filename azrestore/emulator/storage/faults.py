"""The gateway's fault rules: what a :class:`FaultRule` says, and how a firing rule answers
(an error status with ``Retry-After``, a connection reset, a delay, an expired SAS).

When a rule fires (``nth``, ``rate``/``seed``, ``times``) is shared with the Resource
Manager simulator's rules (:mod:`azrestore.emulator.rules`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Final, Literal, get_args

from aiohttp import web

from azrestore.emulator.rules import RuleState, check_rule
from azrestore.emulator.storage.bodies import drain
from azrestore.emulator.storage.errors import (
    CODE_MESSAGES,
    STATUS_ERRORS,
    Rejection,
    error_response,
    retry_after_headers,
)
from azrestore.emulator.storage.operations import OPERATIONS
from azrestore.emulator.storage.sas import expired_sas_rejection, http_date
from azrestore.emulator.storage.statistics import GatewayCounters
from azrestore.errors import InputError

__all__ = ["FaultAction", "FaultInjector", "FaultRule"]

FaultAction = Literal["status", "reset", "delay", "expire_sas"]
_ACTIONS: Final[tuple[str, ...]] = get_args(FaultAction)


@dataclass(frozen=True)
class FaultRule:
    """One fault to inject into requests of ``operation`` (an operation name or ``"*"``).

    ``action``:

    - ``"status"``: answer ``status`` with Azure error ``code`` (default by status: 503
      ServerBusy, 500 InternalError, ...) and ``Retry-After`` if ``retry_after`` is set;
    - ``"reset"``: read part of the request body, then reset the connection (not forwarded);
    - ``"delay"``: wait ``delay`` seconds, then handle the request normally;
    - ``"expire_sas"``: answer 403 AuthenticationFailed as if the SAS had expired.

    When it fires: with ``nth`` from the Nth matching request on (1-based, counted per rule;
    at most once unless ``times`` says more), with ``rate`` at that probability per matching
    request (drawn from ``random.Random(seed)``, so runs repeat), at most ``times`` times.
    Without ``nth`` and ``rate`` it fires on every matching request.
    """

    operation: str = "*"
    action: FaultAction = "status"
    status: int = 503
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    nth: int | None = None
    rate: float | None = None
    seed: int | None = None
    times: int | None = None

    def __post_init__(self) -> None:
        if self.operation != "*" and self.operation not in OPERATIONS:
            raise ValueError(
                f"unknown operation {self.operation!r}; one of {', '.join(OPERATIONS)} or *"
            )
        check_rule(
            action=self.action,
            actions=_ACTIONS,
            status=self.status,
            retry_after=self.retry_after,
            delay=self.delay,
            nth=self.nth,
            rate=self.rate,
            times=self.times,
        )

    @property
    def error_code(self) -> str:
        """The Azure error code this rule answers with."""
        if self.code is not None:
            return self.code
        if self.action == "expire_sas":
            return "AuthenticationFailed"
        default = STATUS_ERRORS.get(self.status)
        if default is not None:
            return default[0]
        return "InternalError" if self.status >= 500 else "InvalidInput"

    @property
    def limit(self) -> int | None:
        """How many times the rule may fire (``nth`` alone means once)."""
        if self.times is not None:
            return self.times
        return 1 if self.nth is not None else None

    @classmethod
    def from_spec(cls, text: str) -> FaultRule:
        """Parse ``OPERATION:ACTION[,key=value...]``.

        Examples: ``PutPage:status=503,retry_after=1,nth=3``, ``PutPage:reset,rate=0.05,seed=7``,
        ``*:delay=0.5,times=2``, ``PutPage:expire_sas,nth=10``,
        ``GetBlob:status=500,code=OperationTimedOut``.  ``status=N`` and ``delay=S`` also set
        the action.  Raises :class:`azrestore.errors.InputError` for a malformed spec.
        """
        op_text, sep, rest = text.strip().partition(":")
        if not sep or not op_text or not rest:
            raise InputError(f"fault spec {text!r}: expected OPERATION:ACTION[,key=value...]")
        by_lower = {name.lower(): name for name in OPERATIONS}
        operation = "*" if op_text == "*" else by_lower.get(op_text.lower())
        if operation is None:
            raise InputError(f"fault spec {text!r}: unknown operation {op_text!r}")
        kwargs: dict[str, object] = {"operation": operation}
        action: str | None = None
        types = {f.name: f.type for f in fields(cls)}
        for item in rest.split(","):
            key, eq, value = (part.strip() for part in item.partition("="))
            key = key.lower().replace("-", "_")
            if not eq:
                if key not in _ACTIONS:
                    raise InputError(f"fault spec {text!r}: unknown action {key!r}")
                action = key
                continue
            if key in ("operation", "action") or key not in types:
                raise InputError(f"fault spec {text!r}: unknown key {key!r}")
            try:
                if key in ("code", "message"):
                    kwargs[key] = value
                elif key in ("retry_after", "delay", "rate"):
                    kwargs[key] = float(value)
                else:
                    kwargs[key] = int(value)
            except ValueError:
                raise InputError(f"fault spec {text!r}: bad value for {key}: {value!r}") from None
            if key in ("status", "delay") and action is None:
                action = key
        if action is None:
            raise InputError(
                f"fault spec {text!r}: no action (status=N, reset, delay=S, expire_sas)"
            )
        kwargs["action"] = action
        try:
            return cls(**kwargs)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InputError(f"fault spec {text!r}: {exc}") from None


class FaultInjector:
    """The gateway's fault rules with their counters; injects the first that fires."""

    def __init__(self, rules: Sequence[FaultRule], counters: GatewayCounters) -> None:
        self._counters = counters
        self._rules: list[RuleState[FaultRule]] = []
        self.set_rules(rules)

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        """The current fault rules."""
        return tuple(state.rule for state in self._rules)

    def set_rules(self, rules: Sequence[FaultRule]) -> None:
        """Replace the fault rules (their counters start from zero)."""
        self._rules = [RuleState(rule) for rule in rules]

    async def inject(self, request: web.BaseRequest, op: str) -> web.StreamResponse | None:
        """Apply the fault that fires for this request, if any: the answer to send instead
        of handling it, or None to handle it (after a delay rule's wait)."""
        rule = self._pick(op)
        if rule is None:
            return None
        if rule.action == "reset":
            return await self._reset(request, op)
        if rule.action == "delay":
            await asyncio.sleep(rule.delay)
            return None
        await drain(request, op, self._counters.bytes_received)
        return error_response(request, _fault_rejection(rule))

    def _pick(self, op: str) -> FaultRule | None:
        chosen: int | None = None
        for index, state in enumerate(self._rules):
            if state.rule.operation not in ("*", op):
                continue
            if state.decide() and chosen is None:
                chosen = index
                state.fired += 1
        if chosen is None:
            return None
        rule = self._rules[chosen].rule
        self._counters.faults[chosen] += 1
        self._counters.faults_by_action[rule.action] += 1
        return rule

    async def _reset(self, request: web.BaseRequest, op: str) -> web.StreamResponse:
        """Read part of the body, then reset the connection without answering."""
        expected = request.content_length
        if request.body_exists:
            want = max(1, min(64 * 1024, (expected or 128 * 1024) // 2))
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                got = await request.content.read(want)
                self._counters.bytes_received[op] += len(got)
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER 0: close() sends RST, the client sees a reset, not a clean close.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        # Writing to the aborted transport fails; aiohttp takes that as a client disconnect.
        return web.Response(status=500)


def _fault_rejection(rule: FaultRule) -> Rejection:
    """The answer of a status or expire_sas rule."""
    if rule.action == "expire_sas":
        now = http_date(datetime.now(UTC))
        error = expired_sas_rejection(
            f"Signature not valid in the specified time frame: Start [] - Expiry [{now}] - "
            f"Current [{now}]"
        )
        error.code = rule.error_code
    else:
        code = rule.error_code
        message = rule.message or CODE_MESSAGES.get(code)
        if message is None:
            message = STATUS_ERRORS.get(rule.status, (code, "The request failed."))[1]
        error = Rejection(rule.status, code, message)
    error.headers = retry_after_headers(rule.retry_after)
    return error
