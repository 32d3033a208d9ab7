"""What every resource handler shares: the records, simulated time, disk storage, the
operation engine, the run command rules, the log, and a signal for state changes."""

from __future__ import annotations

import logging
from typing import Literal

import anyio

from azrestore.emulator.arm.clock import Clock
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.log import SimulatorLog
from azrestore.emulator.arm.operations import OperationEngine
from azrestore.emulator.arm.run_command_rules import RunCommandRule, RunCommandRules
from azrestore.emulator.arm.state.registry import Registry
from azrestore.emulator.arm.storage import DiskStorage

__all__ = ["Core", "ScriptsMode"]

#: How Linux run command scripts are answered without a matching rule: ``run`` them for
#: real in a guest sandbox, ``record`` them (the attached disks marked prepared), or
#: ``auto``: run where the machine can (root, loop devices), else record.
ScriptsMode = Literal["run", "record", "auto"]
_log = logging.getLogger("azrestore.emulator")


class Core:
    """The shared parts of one simulator, handed to every resource handler."""

    def __init__(
        self,
        *,
        clock: Clock,
        storage: DiskStorage | None,
        storage_account_id: str,
        run_command_rules: tuple[RunCommandRule, ...] = (),
        scripts: ScriptsMode = "record",
    ) -> None:
        self.clock = clock
        self.storage = storage
        self.storage_account_id = storage_account_id
        self.registry = Registry()
        self.run_command_rules = RunCommandRules(run_command_rules)
        self.scripts: ScriptsMode = scripts
        self._scripts_reason: str | None = None
        self.log = SimulatorLog(clock)
        self.changed = anyio.Event()
        self.operations = OperationEngine(
            clock=clock,
            operations=self.registry.operations,
            log=self.log,
            on_change=self.notify,
        )

    def notify(self) -> None:
        """Wake whoever waits for a state change (run commands waiting for an agent)."""
        self.changed.set()
        self.changed = anyio.Event()

    def scripts_run(self) -> bool:
        """Whether Linux scripts run for real; in ``auto`` mode on a machine that cannot,
        says why once (a logged warning) and records them instead."""
        if self.scripts == "record":
            return False
        from azrestore.emulator.guest.availability import sandbox_unavailable

        reason = sandbox_unavailable()
        if reason is None:
            return True
        if self.scripts == "run":
            raise ArmError(500, "InternalExecutionError", f"Guest scripts cannot run: {reason}")
        if self._scripts_reason is None:
            self._scripts_reason = reason
            _log.warning("guest scripts are recorded, not run: %s", reason)
        return False

    def disk_storage(self) -> DiskStorage:
        """The storage account of disk blobs (500 InternalExecutionError without one)."""
        if self.storage is None:
            raise ArmError(
                500,
                "InternalExecutionError",
                "This simulator has no storage account: disk blobs are unavailable.",
            )
        return self.storage
