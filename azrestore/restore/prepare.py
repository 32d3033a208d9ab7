"""Steps 3 to 5 of a VM's restore, in batches: mount the disks of several VMs on a helper
in one VM update, prepare them with one Run Command, unmount them in one update (also on
failure and Ctrl-C).

A VM whose disks are uploaded waits in its helper family's :class:`HelperPool`. A helper
that is free takes a batch: the VMs waiting, as many as its free data-disk slots hold
(its size's count less its own data disks, see :mod:`.batching`). Unless the batch is
full or no VM of the pool is still to come, it waits for more to join while they keep
coming: until ``window`` seconds pass with none, at most ``max_wait`` after the first.
On a Linux helper the batch is one RunShellScript (:mod:`.batchscript`) that runs
``prepare-linux.sh`` for Linux VMs and ``prepare-windows-offline.sh`` for Windows VMs
prepared offline (in separate batches when one script cannot carry both), each job for
its VM's OS-disk LUN; on a Windows helper the
PowerShell script runs once per VM of the batch, one after the other (Run Command runs one
command at a time per VM), between the batch's one attach and one detach. A job that
fails fails its VM alone, with its error and stderr tail; a Run Command that fails as a
whole (a timeout, the agent) fails the batch's VMs; a job past ``job_timeout`` is stopped
and fails its VM alone.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from ..azure.controlplane import ControlPlane
from ..errors import AzRestoreError, ControlPlaneError
from .batching import allocate_luns, free_slots, take_batch
from .batchscript import (
    DEFAULT_JOB_TIMEOUT,
    OFFLINE_WINDOWS_SCRIPT,
    BatchJob,
    batch_command,
    batch_fits,
    offline_windows_available,
    parse_batch,
)
from .outcome import RestoreObserver, VmOutcome, note_step
from .plan import ResolvedVm
from .scripts import LINUX_SCRIPT, parse_result, windows_prepare_command
from .shared import SharedVm

__all__ = ["HelperPool"]

#: A helper's set-up (creating it), before it takes its first batch.
HelperSetup = Callable[[SharedVm], Awaitable[None]]


@dataclass(eq=False)
class _Request:
    vm: ResolvedVm
    outcome: VmOutcome
    #: the disks to attach, the OS disk first
    disks: list[str]
    queued_at: float
    done: anyio.Event = field(default_factory=anyio.Event)
    error: str | None = None


@dataclass(frozen=True)
class Batch:
    """One batch, for the report and tests: the helper and its VMs."""

    helper: str
    vms: tuple[str, ...]


class HelperPool:
    """The helpers of one family (``linux``: Linux VMs and Windows VMs prepared offline;
    ``windows``) and the VMs waiting for them; ``users`` VMs of the run may come."""

    def __init__(
        self,
        control: ControlPlane,
        family: str,
        helpers: list[SharedVm],
        *,
        users: int,
        window: float,
        max_wait: float | None = None,
        job_timeout: float = DEFAULT_JOB_TIMEOUT,
        observer: RestoreObserver | None,
    ) -> None:
        self.control = control
        self.family = family
        self.helpers = helpers
        self.window = window
        self.max_wait = 4 * window if max_wait is None else max_wait
        self.job_timeout = job_timeout
        self.observer = observer
        self.batches: list[Batch] = []
        self._queue: list[_Request] = []
        self._coming = users
        self._gone: set[str] = set()
        self._changed = anyio.Event()
        #: free data-disk slots per helper: None while unknown, -1 when it is unusable
        self._slots: dict[str, int | None] = {h.vm_id: None for h in helpers}
        self._broken: list[str] = []
        #: free slots of the helpers gathering a batch now
        self._claimed = 0

    # --- the VMs' side ---------------------------------------------------------------

    async def prepare(
        self, vm: ResolvedVm, outcome: VmOutcome, disk_ids: dict[int | None, str]
    ) -> None:
        """Wait for a batch to prepare ``vm``'s disks; raises ControlPlaneError when its
        preparation failed."""
        # The Windows scripts prepare the OS disk; the Linux script gets every disk, so
        # that fstab entries of data disks can be rewritten by UUID too.
        disks = [disk_ids[None]]
        if vm.os_family == "linux":
            disks += [disk for lun, disk in disk_ids.items() if lun is not None]
        self._leave(vm.name)
        if vm.os_family == "windows" and self.family == "linux" and not offline_windows_available():
            raise ControlPlaneError(
                f"{vm.name}: {OFFLINE_WINDOWS_SCRIPT} is not part of this azrestore:"
                " a Windows VM needs a Windows helper"
            )
        request = _Request(vm, outcome, disks, time.monotonic())
        self._queue.append(request)
        self._fail_unservable()
        self._notify()
        try:
            await request.done.wait()
        finally:
            if request in self._queue:
                self._queue.remove(request)
                self._notify()
        if request.error is not None:
            raise ControlPlaneError(request.error)

    def leave(self, vm: str) -> None:
        """``vm`` will not come to the pool (done, failed, or prepared already)."""
        if self._leave(vm):
            self._notify()

    def _leave(self, vm: str) -> bool:
        if vm in self._gone:
            return False
        self._gone.add(vm)
        self._coming -= 1
        return True

    # --- the helpers' side -----------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _wait(self, within: float | None = None) -> None:
        with anyio.move_on_after(within):
            await self._changed.wait()

    def _fail_unservable(self) -> None:
        """Fail the waiting VMs that no helper of the pool can take."""
        if any(slots is None for slots in self._slots.values()):
            return
        most = max((slots for slots in self._slots.values() if slots is not None), default=-1)
        for request in list(self._queue):
            if len(request.disks) > most:
                self._queue.remove(request)
                if most < 0:
                    why = "; ".join(self._broken) or "no helper could be used"
                else:
                    why = (
                        f"its {len(request.disks)} disks are more than a helper of the"
                        f" {self.family} family has free data-disk slots for ({most})"
                    )
                request.error = f"{request.vm.name}: cannot be prepared: {why}"
                request.done.set()

    async def serve(self, helper: SharedVm, setup: HelperSetup | None = None) -> None:
        """One helper's work: take batches until no VM is still to come; then it is done
        with (deallocated by :class:`SharedVm`)."""
        try:
            own = await self._set_up(helper, setup)
            if own is not None:
                await self._serve(helper, own)
        finally:
            with anyio.CancelScope(shield=True):
                await helper.finished_with()

    async def _set_up(self, helper: SharedVm, setup: HelperSetup | None) -> set[int] | None:
        try:
            if setup is not None:
                await setup(helper)
            info = await self.control.get_vm(helper.vm_id)
            if info is None:
                raise ControlPlaneError(f"{helper.vm_id}: the helper VM does not exist")
        except AzRestoreError as exc:
            self._slots[helper.vm_id] = -1
            self._broken.append(str(exc))
            self._fail_unservable()
            return None
        own = set(info.data_disks)
        self._slots[helper.vm_id] = free_slots(info.size, own)
        self._fail_unservable()
        return own

    async def _serve(self, helper: SharedVm, own: set[int]) -> None:
        slots = self._slots[helper.vm_id] or 0
        warmed = False
        while True:
            while not self._queue and self._coming > 0:
                await self._wait()
            if not self._queue:
                return
            if 0 < self._claimed >= sum(len(r.disks) for r in self._queue):
                # Helpers gathering already have room for what waits: not started for it.
                await self._wait()
                continue
            self._claimed += slots
            try:
                warmed = await self._gather(helper, slots, warmed)
                chosen = take_batch([len(r.disks) for r in self._queue], slots)
            finally:
                self._claimed -= slots
                self._notify()
            if not chosen:
                if self._coming <= 0 and not self._queue:
                    return
                if self._coming <= 0 and all(len(r.disks) > slots for r in self._queue):
                    return  # what is left is for a larger helper
                await self._wait()
                continue
            batch = self._one_script_if_needed([self._queue[i] for i in chosen])
            for request in batch:
                self._queue.remove(request)
            await self._run_batch(helper, own, batch)

    async def _gather(self, helper: SharedVm, slots: int, warmed: bool) -> bool:
        """Wait for more VMs while they keep coming (``window`` after the last one that
        came, at most ``max_wait`` after the first that waits), and while the helper
        starts (the attach would wait for the start anyway). Returns whether the helper
        was warmed up."""
        while (
            self._queue
            and self._coming > 0
            and sum(len(r.disks) for r in self._queue) < slots
            and (time.monotonic() < self._deadline() or helper.warming)
        ):
            if not warmed:
                helper.warm_up(on_ready=self._notify)
                warmed = True
            left = self._deadline() - time.monotonic()
            await self._wait(left if left > 0 and not helper.warming else None)
        return warmed

    def _deadline(self) -> float:
        first = min(r.queued_at for r in self._queue)
        last = max(r.queued_at for r in self._queue)
        return min(last + self.window, first + self.max_wait)

    def _one_script_if_needed(self, batch: list[_Request]) -> list[_Request]:
        """The batch, or only its VMs of the first one's script when one batch script
        cannot carry both the Linux and the offline Windows script."""
        scripts = {_script_of(r.vm) for r in batch}
        if self.family == "windows" or len(scripts) < 2 or batch_fits(scripts):
            return batch
        first = _script_of(batch[0].vm)
        return [r for r in batch if _script_of(r.vm) == first]

    async def _run_batch(self, helper: SharedVm, own: set[int], batch: list[_Request]) -> None:
        luns = allocate_luns([len(r.disks) for r in batch], own)
        attach = {
            lun: disk
            for r, ls in zip(batch, luns, strict=True)
            for lun, disk in zip(ls, r.disks, strict=True)
        }
        self.batches.append(Batch(helper.vm_id, tuple(r.vm.name for r in batch)))
        errors: dict[_Request, str | None] = {}
        try:
            for request in batch:
                note_step(request.outcome, "mount", self.observer)
            try:
                await self.control.set_data_disks(helper.vm_id, attach=attach)
                async with helper.use():
                    for request in batch:
                        note_step(request.outcome, "prepare", self.observer)
                    errors = await self._run_scripts(helper, batch, [ls[0] for ls in luns])
                    for request in batch:
                        note_step(request.outcome, "unmount", self.observer)
            except AzRestoreError as exc:
                errors = {r: errors.get(r) or f"{r.vm.name}: {exc}" for r in batch}
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        await self.control.set_data_disks(
                            helper.vm_id, detach=tuple(attach.values())
                        )
                    except AzRestoreError as exc:
                        errors = {
                            r: errors.get(r) or f"{r.vm.name}: could not detach its disks: {exc}"
                            for r in batch
                        }
        finally:
            for request in batch:
                request.error = errors.get(request)
                request.done.set()

    async def _run_scripts(
        self, helper: SharedVm, batch: list[_Request], os_luns: list[int]
    ) -> dict[_Request, str | None]:
        if self.family == "windows":
            return await self._run_windows(helper, batch, os_luns)
        jobs = [BatchJob(lun, _script_of(r.vm)) for r, lun in zip(batch, os_luns, strict=True)]
        command = batch_command(jobs, job_timeout=self.job_timeout)
        output = await self.control.run_command(
            helper.vm_id, command_id=command.command_id, script=list(command.script)
        )
        results = parse_batch(output.stdout, len(jobs))
        if results is None:
            tail = (output.stderr or output.stdout).strip().splitlines()[-1:] or ["no output"]
            why = f"the batch preparation script did not finish: {tail[0][-300:]}"
            return {r: f"{r.vm.name}: {why}" for r in batch}
        return {
            r: None
            if result.ok
            else f"{r.vm.name}: preparing the disks failed: {result.describe()}"
            for r, result in zip(batch, results, strict=True)
        }

    async def _run_windows(
        self, helper: SharedVm, batch: list[_Request], os_luns: list[int]
    ) -> dict[_Request, str | None]:
        errors: dict[_Request, str | None] = {}
        for request, lun in zip(batch, os_luns, strict=True):
            command = windows_prepare_command(lun)
            try:
                output = await self.control.run_command(
                    helper.vm_id,
                    command_id=command.command_id,
                    script=list(command.script),
                    parameters=dict(command.parameters),
                )
                errors[request] = _single_result(request.vm.name, output.stdout, output.stderr)
            except AzRestoreError as exc:
                errors[request] = f"{request.vm.name}: {exc}"
        return errors


def _script_of(vm: ResolvedVm) -> str:
    """The script a Linux helper runs for ``vm``."""
    return LINUX_SCRIPT if vm.os_family == "linux" else OFFLINE_WINDOWS_SCRIPT


def _single_result(vm: str, stdout: str, stderr: str) -> str | None:
    """The per-VM scripts end with ``AZRESTORE-RESULT {json}``; no such line means they
    failed. None: prepared."""
    result = parse_result(stdout)
    if result is None:
        tail = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
        return f"{vm}: the preparation script did not finish: {tail[0]}"
    if result.get("ok", True) is False:
        tail = stderr.strip().splitlines()[-3:]
        extra = f" (stderr: {' | '.join(tail)})" if tail else ""
        return f"{vm}: preparing the disks failed: {result.get('error') or result}{extra}"
    return None
