"""Run Command on a VM (how a restore prepares a disk from inside a helper appliance):
one command at a time per VM, its output split into stdout and stderr."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from azure.mgmt.compute.models import RunCommandInput

from .arm import lro
from .mgmtclients import ManagementClients
from .resource_id import ResourceId


@dataclass(frozen=True, slots=True)
class RunCommandOutput:
    stdout: str
    stderr: str
    statuses: tuple[str, ...]


class RunCommands:
    """Run Command through ``clients``, queued per VM: Azure runs one command at a time
    per VM and answers 409 Conflict to another."""

    def __init__(self, clients: ManagementClients) -> None:
        self._clients = clients
        self._locks: defaultdict[str, anyio.Lock] = defaultdict(anyio.Lock)

    async def run(
        self,
        vm_id: str,
        *,
        command_id: str,
        script: list[str],
        parameters: Mapping[str, str] | None = None,
    ) -> RunCommandOutput:
        """Run ``script`` (a ``command_id`` such as RunShellScript) and return its output."""
        rid = ResourceId.parse(vm_id, expected="Microsoft.Compute/virtualMachines")
        vms = (await self._clients.compute(rid.subscription)).virtual_machines
        body: dict[str, Any] = {"commandId": command_id, "script": script}
        if parameters:
            body["parameters"] = [{"name": k, "value": v} for k, v in parameters.items()]
        async with self._locks[vm_id.lower()]:
            result = await lro(
                f"run command on VM {rid.name}",
                vms.begin_run_command(rid.resource_group, rid.name, RunCommandInput(body)),
            )
        statuses = (result.as_dict() if result is not None else {}).get("value") or []
        stdout = stderr = ""
        for status in statuses:
            code = str(status.get("code", ""))
            message = str(status.get("message", ""))
            if "StdOut" in code:  # Windows: one status per stream
                stdout = message
            elif "StdErr" in code:
                stderr = message
            elif "[stdout]" in message:  # Linux: "Enable succeeded: [stdout] ... [stderr] ..."
                out, _, err = message.partition("[stdout]")[2].partition("[stderr]")
                stdout, stderr = out.strip("\n"), err.strip("\n")
        return RunCommandOutput(stdout, stderr, tuple(str(s.get("code", "")) for s in statuses))
