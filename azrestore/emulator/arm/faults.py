"""Fault rules for the Resource Manager simulator.

:class:`ArmFaultRule` mirrors the storage gateway's :class:`~azrestore.emulator.storage.FaultRule`
(``nth``/``rate``/``seed``/``times``) but matches ARM operations by name (a glob such as
``virtualMachines/start``, ``disks/*`` or ``operations/poll``), HTTP method and path.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Final, Literal, get_args

from azrestore.emulator.arm.clock import format_seconds
from azrestore.emulator.arm.errors import CONCURRENT_REQUEST, ArmError
from azrestore.emulator.rules import RuleState, check_rule
from azrestore.errors import InputError

__all__ = [
    "ArmFaultAction",
    "ArmFaultRule",
    "ArmFaultRules",
]

ArmFaultAction = Literal["status", "fail", "delay"]
_ACTIONS: Final[tuple[str, ...]] = get_args(ArmFaultAction)

# Default code and message per injected status (ARM's front door and Compute's wording).
_STATUS_ERRORS: Final[Mapping[int, tuple[str, str]]] = {
    400: ("BadRequest", "The request is invalid."),
    401: ("AuthenticationFailed", "Authentication failed."),
    403: ("AuthorizationFailed", "The client does not have authorization to perform action."),
    404: ("NotFound", "The requested resource was not found."),
    409: ("Conflict", CONCURRENT_REQUEST),
    429: (
        "TooManyRequests",
        "The request is being throttled as the limit has been reached for operation type. "
        "Please try again after the time in the Retry-After header.",
    ),
    500: ("InternalServerError", "Encountered internal server error."),
    502: ("BadGateway", "The gateway received an invalid response from the resource provider."),
    503: ("ServiceUnavailable", "The service is currently unavailable. Please try again later."),
    504: (
        "GatewayTimeout",
        "The gateway did not receive a response from the resource provider within the "
        "specified time period.",
    ),
}
_FAIL_ERROR: Final = (
    "InternalExecutionError",
    "An internal execution error occurred. Please retry later.",
)


@dataclass(frozen=True)
class ArmFaultRule:
    """One fault for requests whose operation name matches ``operation`` (a glob, ``*`` = all).

    Operation names: ``<resourceType>/<verb>`` such as ``disks/write`` (PUT), ``disks/update``
    (PATCH), ``disks/delete``, ``disks/read``, ``disks/list``, ``disks/beginGetAccess``,
    ``disks/endGetAccess``, ``virtualMachines/{write,update,delete,read,list,start,powerOff,
    deallocate,restart,runCommand,instanceView}``, ``networkInterfaces/*``,
    ``virtualNetworks/*``, ``subnets/*``, ``resourceGroups/*``, and the long-running
    operation monitors ``operations/poll`` (Azure-AsyncOperation) and ``operations/result``
    (Location).  ``method`` (GET, PUT, ...) and ``path`` (a regular expression searched in
    the URL path, case-insensitive) narrow the match further.

    ``action``:

    - ``"status"``: answer ``status`` with ARM error ``code``/``message`` (defaults by
      status: 429 TooManyRequests, 409 Conflict, 503 ServiceUnavailable, ...) and
      ``Retry-After: retry_after`` (real seconds) when set;
    - ``"fail"``: accept the request, then let the long-running operation it starts end
      ``Failed`` with ``code``/``message`` (default InternalExecutionError) and leave the
      resource as it was (requests that start no operation never match it);
    - ``"delay"``: wait ``delay`` real seconds, then serve the request normally.

    When it fires: ``nth`` (from the Nth matching request on, once unless ``times`` says
    more), ``rate`` (probability per matching request, drawn from ``random.Random(seed)``),
    at most ``times`` times; without ``nth`` and ``rate`` on every matching request.
    """

    operation: str = "*"
    action: ArmFaultAction = "status"
    status: int = 503
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    method: str | None = None
    path: str | None = None
    nth: int | None = None
    rate: float | None = None
    seed: int | None = None
    times: int | None = None

    def __post_init__(self) -> None:
        if not self.operation:
            raise ValueError("operation must not be empty (use * for all)")
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
        if self.action == "status" and self.status < 400:
            raise ValueError("a status rule answers an error status (400 to 599)")
        if self.path is not None:
            try:
                re.compile(self.path)
            except re.error as exc:
                raise ValueError(f"path is not a regular expression: {exc}") from None

    @property
    def limit(self) -> int | None:
        """How many times the rule may fire (``nth`` alone means once)."""
        if self.times is not None:
            return self.times
        return 1 if self.nth is not None else None

    def matches(self, operation: str, method: str, path: str, *, starts_operation: bool) -> bool:
        """Whether a request (its operation name, method and path) is one this rule is about."""
        if self.action == "fail" and not starts_operation:
            return False
        if not fnmatch.fnmatchcase(operation.lower(), self.operation.lower()):
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or re.search(self.path, path, re.IGNORECASE) is not None

    def error(self) -> ArmError:
        """The error this rule answers (``status``) or ends the operation with (``fail``)."""
        if self.action == "fail":
            code = self.code or _FAIL_ERROR[0]
            message = self.message or (_FAIL_ERROR[1] if self.code is None else code)
            return ArmError(self.status if self.status >= 400 else 500, code, message)
        default_code, default_message = _STATUS_ERRORS.get(
            self.status,
            ("InternalServerError", "Encountered internal server error.")
            if self.status >= 500
            else ("BadRequest", "The request is invalid."),
        )
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = format_seconds(self.retry_after)
        return ArmError(
            self.status,
            self.code or default_code,
            self.message or default_message,
            headers=headers,
        )

    @classmethod
    def from_spec(cls, text: str) -> ArmFaultRule:
        """Parse ``OPERATION:ACTION[,key=value...]``.

        Examples: ``operations/poll:status=503,nth=2``, ``*:status=429,retry_after=1,rate=0.1,
        seed=7``, ``virtualMachines/start:fail,code=OSProvisioningTimedOut``,
        ``disks/write:delay=2``, ``virtualMachines/update:status=409,method=PATCH``.
        ``status=N`` and ``delay=S`` also set the action.  Raises
        :class:`azrestore.errors.InputError` for a malformed spec.
        """
        op_text, sep, rest = text.strip().partition(":")
        op_text = op_text.strip()
        if not sep or not op_text or not rest.strip():
            raise InputError(f"fault spec {text!r}: expected OPERATION:ACTION[,key=value...]")
        kwargs: dict[str, object] = {"operation": op_text}
        action: str | None = None
        known = {f.name for f in fields(cls)}
        for item in rest.split(","):
            key, eq, value = (part.strip() for part in item.partition("="))
            key = key.lower().replace("-", "_")
            if not eq:
                if key not in _ACTIONS:
                    raise InputError(f"fault spec {text!r}: unknown action {key!r}")
                action = key
                continue
            if key in ("operation", "action") or key not in known:
                raise InputError(f"fault spec {text!r}: unknown key {key!r}")
            try:
                if key in ("code", "message", "method", "path"):
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
            raise InputError(f"fault spec {text!r}: no action (status=N, fail, delay=S)")
        kwargs["action"] = action
        try:
            return cls(**kwargs)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InputError(f"fault spec {text!r}: {exc}") from None


class ArmFaultRules:
    """The simulator's fault rules, in order, each with its firing state."""

    def __init__(self, rules: Sequence[ArmFaultRule] = ()) -> None:
        self._states: list[RuleState[ArmFaultRule]] = []
        self.replace(rules)

    @property
    def rules(self) -> tuple[ArmFaultRule, ...]:
        """The current rules."""
        return tuple(state.rule for state in self._states)

    def replace(self, rules: Sequence[ArmFaultRule]) -> None:
        """Replace the rules (their counters start from zero)."""
        self._states = [RuleState(rule) for rule in rules]

    def add(self, rule: ArmFaultRule) -> None:
        """Add one rule after the others."""
        self._states.append(RuleState(rule))

    def pick(
        self, operation: str, method: str, path: str, *, starts_operation: bool
    ) -> ArmFaultRule | None:
        """The first matching rule that decides to fire (every matching rule counts the
        request, so ``nth`` and ``rate`` see each one)."""
        chosen: RuleState[ArmFaultRule] | None = None
        for state in self._states:
            if not state.rule.matches(operation, method, path, starts_operation=starts_operation):
                continue
            if state.decide() and chosen is None:
                chosen = state
                state.fired += 1
        return chosen.rule if chosen is not None else None
