"""Run Command: a script run through the guest agent, one at a time per VM.

A matching :class:`~azrestore.emulator.arm.run_command_rules.RunCommandRule` scripts the
result.  Otherwise a Linux VM's RunShellScript runs for real when the simulator's scripts
mode allows it (see :mod:`.guest_scripts`): its streams and exit status are the script's
own, and only the data disks the emulator's inspection then finds to be OS disks with a
working agent get the "prepared" mark.  Else (recorded) a successful run command gives
every data disk of the VM the mark (a helper appliance preparing restored disks).  The mark
lets a VM made from such a disk report its guest agent (see :mod:`.agent`).
"""

from __future__ import annotations

from typing import Any, Final

import anyio

from azrestore.emulator.arm.calls import Call, Reply
from azrestore.emulator.arm.errors import ArmError, invalid_parameter
from azrestore.emulator.arm.request_bodies import required
from azrestore.emulator.arm.resource_ids import id_key
from azrestore.emulator.arm.run_command_rules import RunCommandInvocation, RunCommandOutcome
from azrestore.emulator.arm.state.disks import PreparedMark
from azrestore.emulator.arm.state.vms import RunCommandRecord, VmRecord
from azrestore.emulator.arm.vms.agent import wait_for_agent
from azrestore.emulator.arm.vms.guest_scripts import mark_inspected, run_for_real, runs_for_real
from azrestore.emulator.arm.vms.resources import MARKED_FOR_DELETION, VmResources

__all__ = ["VmRunCommands"]

OUTPUT_LIMIT: Final = 4096
LINUX_COMMANDS: Final = ("RunShellScript", "ifconfig")
WINDOWS_COMMANDS: Final = (
    "RunPowerShellScript",
    "EnableAdminAccount",
    "EnableRemotePS",
    "IPConfig",
    "RDPSettings",
    "ResetRDPCert",
    "SetRDPPort",
)


def truncate_output(text: str) -> str:
    """The last 4096 bytes of a stream, as Azure reports run command output."""
    data = text.encode("utf-8", "replace")
    if len(data) <= OUTPUT_LIMIT:
        return text
    return data[-OUTPUT_LIMIT:].decode("utf-8", "ignore")


def _run_command_result(linux: bool, stdout: str, stderr: str) -> dict[str, Any]:
    """Azure's RunCommandResult: one Linux status with both streams, or two Windows ones."""
    if linux:
        return {
            "value": [
                {
                    "code": "ProvisioningState/succeeded",
                    "level": "Info",
                    "displayStatus": "Provisioning succeeded",
                    "message": f"Enable succeeded: \n[stdout]\n{stdout}\n[stderr]\n{stderr}",
                }
            ]
        }
    return {
        "value": [
            {
                "code": "ComponentStatus/StdOut/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
                "message": stdout,
            },
            {
                "code": "ComponentStatus/StdErr/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
                "message": stderr,
            },
        ]
    }


class VmRunCommands(VmResources):
    """Handles runCommand on a VM."""

    async def run_command(self, call: Call, name: str) -> Reply:
        """POST runCommand: run a script through the guest agent (one at a time per VM)."""
        vm = self.find(call, name)
        body = await call.json()
        allowed = WINDOWS_COMMANDS if vm.os_type == "Windows" else LINUX_COMMANDS
        requested = str(required(body, "commandId", "commandId"))
        command_id = next((c for c in allowed if c.lower() == requested.lower()), None)
        if command_id is None:
            raise invalid_parameter(
                "commandId",
                f"The command id '{requested}' is not valid for a {vm.os_type} VM. Valid "
                f"command ids: {', '.join(allowed)}.",
            )
        script = body.get("script") or []
        if not isinstance(script, list) or not all(isinstance(line, str) for line in script):
            raise invalid_parameter("script", "script must be a list of strings.")
        parameters: list[tuple[str, str]] = []
        for index, parameter in enumerate(body.get("parameters") or []):
            parameters.append(
                (
                    str(required(parameter, "name", f"parameters[{index}].name")),
                    str(parameter.get("value", "")),
                )
            )
        if vm.deleting:
            raise ArmError(
                409,
                "OperationNotAllowed",
                MARKED_FOR_DELETION.format(op="Run command", name=vm.name),
            )
        if vm.power_state not in ("running", "starting"):
            raise ArmError(
                409,
                "OperationNotAllowed",
                "The operation requires the VM to be running (or set to run).",
            )
        if vm.run_command is not None and vm.run_command.running:
            raise ArmError(
                409,
                "Conflict",
                "Run command extension execution is in progress. Please wait for completion "
                "before invoking a run command.",
            )
        invocation = RunCommandInvocation(
            vm_id=vm.id,
            vm_name=vm.name,
            os_type=vm.os_type,
            command_id=command_id,
            script=tuple(script),
            parameters=tuple(parameters),
            os_disk_id=vm.os_disk_id,
            data_disk_ids=tuple(d.disk_id for d in vm.data_disks),
        )
        holder: list[RunCommandRecord] = []

        async def run() -> dict[str, Any]:
            record = holder[0]
            await wait_for_agent(self.core, vm)
            rule = self.core.run_command_rules.pick(lambda r: r.matches(invocation))
            if rule is None and runs_for_real(self.core, vm, command_id):
                return await self._run_for_real(vm, record)
            outcome = rule.result(invocation) if rule is not None else RunCommandOutcome()
            if rule is not None and rule.duration is not None:
                await anyio.sleep(self.clock.scale(rule.duration))
            else:
                await anyio.sleep(self.clock.duration("virtualMachines/runCommand"))
            stdout, stderr = truncate_output(outcome.stdout), truncate_output(outcome.stderr)
            record.stdout, record.stderr, record.exit_code = stdout, stderr, outcome.exit_code
            if outcome.error_code is not None:
                raise ArmError(409, outcome.error_code, outcome.error_message or outcome.error_code)
            linux = vm.os_type != "Windows"
            if linux and outcome.exit_code != 0:
                raise ArmError(
                    409,
                    "VMExtensionProvisioningError",
                    "VM has reported a failure when processing extension 'RunCommandLinux'. "
                    'Error message: "Enable failed: failed to execute command: command '
                    f"terminated with exit status={outcome.exit_code}\n[stdout]\n{stdout}\n"
                    f'[stderr]\n{stderr}\n".',
                )
            if outcome.prepares:
                record.prepared_disks = self._mark_prepared(vm, record)
            return _run_command_result(linux, stdout, stderr)

        operation = self.core.operations.begin(
            call,
            name="virtualMachines/runCommand",
            resource_id=vm.id,
            location=vm.location,
            provider="compute",
            run=run,
            delay=0.0,
            has_output=True,
        )
        record = RunCommandRecord(
            operation=operation,
            vm_id=vm.id,
            command_id=command_id,
            script=tuple(script),
            parameters=tuple(parameters),
        )
        holder.append(record)
        self.registry.run_commands.append(record)
        vm.run_command = operation
        return self.core.operations.accepted(call, operation)

    async def _run_for_real(self, vm: VmRecord, record: RunCommandRecord) -> dict[str, Any]:
        simulated = self.clock.duration("virtualMachines/runCommand")
        started = anyio.current_time()
        run = await run_for_real(self.core, vm, record.script, record.parameters)
        # The simulated duration still holds when the real run was quicker.
        await anyio.sleep(max(0.0, simulated - (anyio.current_time() - started)))
        record.ran = True
        record.stdout, record.stderr = run.stdout, run.stderr
        record.exit_code = run.exit_code
        if run.exit_code is None:
            raise ArmError(
                409,
                "VMExtensionProvisioningError",
                "VM has reported a failure when processing extension 'RunCommandLinux'. "
                'Error message: "Enable failed: failed to execute command: command timed '
                f'out\n[stdout]\n{run.stdout}\n[stderr]\n{run.stderr}\n".',
            )
        mark_inspected(self.core, vm, record, run)
        self.core.notify()
        if run.exit_code != 0:
            raise ArmError(
                409,
                "VMExtensionProvisioningError",
                "VM has reported a failure when processing extension 'RunCommandLinux'. "
                'Error message: "Enable failed: failed to execute command: command '
                f"terminated with exit status={run.exit_code}\n[stdout]\n{run.stdout}\n"
                f'[stderr]\n{run.stderr}\n".',
            )
        return _run_command_result(True, run.stdout, run.stderr)

    def _mark_prepared(self, vm: VmRecord, record: RunCommandRecord) -> tuple[str, ...]:
        marked: list[str] = []
        for data_disk in vm.data_disks:
            disk = self.registry.disks.get(id_key(data_disk.disk_id))
            if disk is None:
                continue
            disk.prepared = PreparedMark(
                vm_id=vm.id,
                command_id=record.command_id,
                script=record.script,
                parameters=record.parameters,
                operation_id=record.operation.id,
                time=self.clock.now(),
            )
            marked.append(disk.id)
        return tuple(marked)
