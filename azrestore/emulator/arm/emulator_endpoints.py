"""The simulator's own endpoints (with the simulator's bearer token, as every request):
``GET /_emulator/state`` (the snapshot as JSON), ``GET /_emulator/log[?polls=0]``,
``GET|PUT /_emulator/faults`` (PUT ``{"rules": [spec...]}`` replaces the fault rules) and
``GET /_emulator/info``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Protocol

from aiohttp import web

from azrestore.emulator.arm.calls import Reply
from azrestore.emulator.arm.faults import ArmFaultRule
from azrestore.emulator.arm.log import LogEntry
from azrestore.emulator.arm.state.snapshot import SimulatorState
from azrestore.errors import InputError

__all__ = ["EmulatorEndpoints", "SimulatorControls"]


class SimulatorControls(Protocol):
    """What the endpoints read and change on the simulator."""

    @property
    def endpoint(self) -> str: ...
    @property
    def ca_bundle(self) -> str: ...
    @property
    def time_factor(self) -> float: ...
    @property
    def rules(self) -> tuple[ArmFaultRule, ...]: ...

    subscription_id: str
    storage_account_id: str

    def state(self) -> SimulatorState: ...
    def log(self, *, polls: bool = True) -> tuple[LogEntry, ...]: ...
    def set_rules(self, rules: Sequence[ArmFaultRule]) -> None: ...


class EmulatorEndpoints:
    """Answers ``/_emulator/...`` requests."""

    def __init__(self, simulator: SimulatorControls) -> None:
        self._simulator = simulator

    async def answer(self, request: web.BaseRequest, rest: list[str]) -> Reply:
        """Answer ``/_emulator/<rest>``."""
        sim = self._simulator
        what = rest[0] if len(rest) == 1 else ""
        method = request.method.upper()
        if what == "state" and method == "GET":
            return Reply(200, sim.state().to_json())
        if what == "log" and method == "GET":
            polls = request.query.get("polls", "1").lower() not in ("0", "false", "no")
            entries = sim.log(polls=polls)
            return Reply(200, {"value": [_log_json(entry) for entry in entries]})
        if what == "info" and method == "GET":
            return Reply(
                200,
                {
                    "arm_endpoint": sim.endpoint,
                    "ca_bundle": sim.ca_bundle,
                    "subscription_id": sim.subscription_id,
                    "storage_account_id": sim.storage_account_id,
                    "time_factor": sim.time_factor,
                },
            )
        if what == "faults" and method == "GET":
            return Reply(200, {"rules": [asdict(rule) for rule in sim.rules]})
        if what == "faults" and method == "PUT":
            try:
                data = json.loads(await request.read() or b"{}")
                specs = data.get("rules", [])
                rules = [ArmFaultRule.from_spec(str(spec)) for spec in specs]
            except (ValueError, AttributeError, InputError) as exc:
                return Reply(400, {"error": {"code": "InvalidFaultSpec", "message": str(exc)}})
            sim.set_rules(rules)
            return Reply(200, {"rules": [asdict(rule) for rule in sim.rules]})
        return Reply(404, {"error": {"code": "NotFound", "message": "unknown emulator endpoint"}})


def _log_json(entry: LogEntry) -> dict[str, Any]:
    data = asdict(entry)
    data["time"] = entry.time.isoformat()
    return data
