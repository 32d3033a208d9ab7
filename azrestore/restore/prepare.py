"""Steps 3 to 5 of a VM's restore: mount its disks on the helper of its OS family, prepare
them with azrestore's Run Command script, and unmount them again (also on failure)."""

from __future__ import annotations

import json

import anyio

from ..azure.controlplane import ControlPlane
from ..errors import ControlPlaneError
from .outcome import RestoreObserver, VmOutcome, note_step
from .plan import ResolvedVm
from .scripts import linux_prepare_command, windows_prepare_command
from .shared import SharedVm

RESULT_MARKER = "AZRESTORE-RESULT"
#: LUNs 0 to 63: the most data disks an Azure VM size allows
_MAX_LUNS = 64


class HelperPreparation:
    """The preparation of the run's VMs on the helpers. Several VMs may use one helper at
    once: each takes LUNs no other holds (the helper's own data disks included)."""

    def __init__(self, control: ControlPlane, observer: RestoreObserver | None) -> None:
        self.control = control
        self.observer = observer
        self._helper_luns: dict[str, set[int]] = {}
        self._lun_lock = anyio.Lock()

    async def prepare(
        self,
        vm: ResolvedVm,
        outcome: VmOutcome,
        helper: SharedVm,
        disk_ids: dict[int | None, str],
    ) -> None:
        # The Windows helper prepares the OS disk; the Linux helper gets every disk, so
        # that fstab entries of data disks can be rewritten by UUID too.
        wanted = [disk_ids[None]] if vm.os_family == "windows" else list(disk_ids.values())
        luns = await self._take_luns(helper.vm_id, len(wanted))
        attach = dict(zip(luns, wanted, strict=True))
        note_step(outcome, "mount", self.observer)
        await self.control.set_data_disks(helper.vm_id, attach=attach)
        try:
            async with helper.use():
                note_step(outcome, "prepare", self.observer)
                command = (
                    linux_prepare_command(luns[0])
                    if vm.os_family == "linux"
                    else windows_prepare_command(luns[0])
                )
                output = await self.control.run_command(
                    helper.vm_id,
                    command_id=command.command_id,
                    script=list(command.script),
                    parameters=dict(command.parameters),
                )
                _check_prepare_output(vm.name, output.stdout, output.stderr)
                note_step(outcome, "unmount", self.observer)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self.control.set_data_disks(helper.vm_id, detach=tuple(wanted))
                finally:
                    await self._give_luns(helper.vm_id, luns)

    async def _take_luns(self, helper_id: str, count: int) -> list[int]:
        async with self._lun_lock:
            if helper_id not in self._helper_luns:
                info = await self.control.get_vm(helper_id)
                if info is None:
                    raise ControlPlaneError(f"{helper_id}: the helper VM does not exist")
                self._helper_luns[helper_id] = set(info.data_disks)
            used = self._helper_luns[helper_id]
            free = [lun for lun in range(_MAX_LUNS) if lun not in used][:count]
            if len(free) < count:
                raise ControlPlaneError(f"{helper_id}: no free LUNs on the helper")
            used.update(free)
            return free

    async def _give_luns(self, helper_id: str, luns: list[int]) -> None:
        async with self._lun_lock:
            self._helper_luns[helper_id].difference_update(luns)


def _check_prepare_output(vm: str, stdout: str, stderr: str) -> None:
    """The scripts end with ``AZRESTORE-RESULT {json}``; no such line means they failed."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            try:
                result = json.loads(line[len(RESULT_MARKER) :].strip())
            except ValueError:
                break
            if isinstance(result, dict) and result.get("ok", True) is False:
                raise ControlPlaneError(f"{vm}: preparing the disks failed: {result}")
            return
    tail = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
    raise ControlPlaneError(f"{vm}: the preparation script did not finish: {tail[0]}")
