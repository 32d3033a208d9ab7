"""A Linux VM's RunShellScript run for real (see :mod:`azrestore.emulator.guest`): the
VM's attached data disks, the run, and the prepared marks the emulator's own inspection
of the disks earns them."""

from __future__ import annotations

from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.resource_ids import id_key
from azrestore.emulator.arm.state.disks import PreparedMark
from azrestore.emulator.arm.state.vms import RunCommandRecord, VmRecord
from azrestore.emulator.guest.runner import AttachedDisk, GuestRun, run_guest_script
from azrestore.emulator.guest.sandbox import SandboxError

__all__ = ["mark_inspected", "run_for_real", "runs_for_real"]


def runs_for_real(core: Core, vm: VmRecord, command_id: str) -> bool:
    """Whether this run command (no rule matched) runs for real."""
    return vm.os_type != "Windows" and command_id == "RunShellScript" and core.scripts_run()


async def run_for_real(
    core: Core, vm: VmRecord, script: tuple[str, ...], parameters: tuple[tuple[str, str], ...]
) -> GuestRun:
    """Run the script with the VM's data disks attached (their blobs on loop devices)."""
    storage = core.disk_storage()
    disks = []
    for data_disk in vm.data_disks:
        disk = core.registry.disks.get(id_key(data_disk.disk_id))
        if disk is None or disk.container is None or not disk.blob_ready:
            continue
        if disk.managed_by is None or id_key(disk.managed_by) != id_key(vm.id):
            continue
        disks.append(AttachedDisk(lun=data_disk.lun, disk_id=disk.id, container=disk.container))
    try:
        return await run_guest_script(storage, disks, "\n".join(script), parameters)
    except (SandboxError, OSError) as exc:
        raise ArmError(
            500, "InternalExecutionError", f"The emulator could not run the script: {exc}"
        ) from exc


def mark_inspected(core: Core, vm: VmRecord, record: RunCommandRecord, run: GuestRun) -> None:
    """Give the prepared mark to each disk the inspection found ready (an OS disk with a
    working guest agent); take it from the others."""
    marked = []
    for disk_id, verdict in run.verdicts.items():
        disk = core.registry.disks.get(id_key(disk_id))
        if disk is None:
            continue
        if not verdict.ready:
            disk.prepared = None
            continue
        disk.prepared = PreparedMark(
            vm_id=vm.id,
            command_id=record.command_id,
            script=record.script,
            parameters=record.parameters,
            operation_id=record.operation.id,
            time=core.clock.now(),
            evidence=verdict.evidence,
            os=verdict.os,
        )
        marked.append(disk.id)
    record.prepared_disks = tuple(marked)
