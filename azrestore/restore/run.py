"""Restore the VMs of a resolved plan into Azure, many at once.

Per VM, as the backup product this mirrors does it: upload every disk (through the proxy,
if one is used), mount the disks on the helper of the VM's OS family, prepare them with a
Run Command script, unmount, then register the VM from the prepared disks, power it on
and wait for the Azure agent. The VMs' chains run concurrently: while one uploads another
is prepared and a third registered. A failed VM does not stop the others; Ctrl-C stops
all. The proxy and helpers are always left deallocated and disk access always revoked.

Re-running a plan (after a failure, Ctrl-C, SIGTERM or kill -9) continues each VM from
the step it reached: a disk left open for upload continues from its journal, a disk in
state Unattached whose ``azrestore-source`` tag matches the image is not uploaded again
(nor prepared again once its ``azrestore-prepared`` tag says so), an existing NIC or VM
is taken as it is.

The steps live in their own modules: :mod:`.upload`, :mod:`.prepare`, :mod:`.register`;
the shared VMs' power in :mod:`.shared`.
"""

from __future__ import annotations

import time

import anyio
import anyio.abc

from ..azure.controlplane import ControlPlane
from ..errors import AzRestoreError
from ..transfer.budget import TransferBudget
from ..transfer.config import TransferConfig
from .outcome import RestoreObserver, RestoreReport, VmOutcome, note_step
from .plan import ResolvedPlan, ResolvedVm
from .prepare import HelperPreparation
from .register import VmRegistration
from .settings import RestoreSettings
from .shared import SharedVm
from .upload import DiskUploads


class RestoreRun:
    """One run of a plan against the Azure that ``control`` talks to."""

    def __init__(
        self,
        resolved: ResolvedPlan,
        control: ControlPlane,
        *,
        config: TransferConfig,
        settings: RestoreSettings | None = None,
        observer: RestoreObserver | None = None,
    ) -> None:
        self.resolved = resolved
        self.plan = resolved.plan
        self.control = control
        self.config = config
        self.settings = settings or RestoreSettings()
        self.observer = observer
        self.proxy: SharedVm | None = None
        self.helpers: dict[str, SharedVm] = {}

    async def run(self) -> RestoreReport:
        """Restore every VM; the report also goes to the observer's ``finished``, also
        when the run is cancelled (Ctrl-C) midway, its unfinished VMs then
        ``interrupted``."""
        started = time.monotonic()
        outcomes = [VmOutcome(vm.name, vm.os_family, vm.generation) for vm in self.resolved.vms]
        try:
            await self._run(outcomes)
        except BaseException:
            report = self._report(outcomes, started, interrupted=True)
            if self.observer is not None:
                self.observer.finished(report)
            raise
        report = self._report(outcomes, started, interrupted=False)
        if self.observer is not None:
            self.observer.finished(report)
        return report

    def _report(
        self, outcomes: list[VmOutcome], started: float, *, interrupted: bool
    ) -> RestoreReport:
        for outcome in outcomes:
            if interrupted and outcome.status not in ("succeeded", "failed"):
                outcome.status = "interrupted"
                step = outcome.steps[-1] if outcome.steps else "start"
                outcome.error = f"interrupted at step {step}"
        left = [r for o in outcomes if o.status != "succeeded" for r in o.resources]
        shared = {vm.vm_id: vm.history for vm in self._shared_vms()}
        return RestoreReport(
            outcomes, left, time.monotonic() - started, shared, interrupted=interrupted
        )

    async def _run(self, outcomes: list[VmOutcome]) -> None:
        async with anyio.create_task_group() as tasks:
            self._make_shared_vms(tasks)
            chain = _VmChain(
                self.observer,
                self.helpers,
                DiskUploads(
                    self.resolved,
                    self.control,
                    config=self.config,
                    settings=self.settings,
                    # One budget of requests, buffers and bandwidth for every transfer.
                    budget=TransferBudget.from_config(self.config),
                    proxy=self.proxy,
                    helper_ids={shared.vm_id for shared in self.helpers.values()},
                    observer=self.observer,
                ),
                HelperPreparation(self.control, self.observer),
                VmRegistration(
                    self.resolved, self.control, settings=self.settings, observer=self.observer
                ),
            )
            try:
                async with anyio.create_task_group() as chains:
                    for vm, outcome in zip(self.resolved.vms, outcomes, strict=True):
                        chains.start_soon(chain.restore_vm, vm, outcome)
            finally:
                await self._shutdown_shared_vms()
                tasks.cancel_scope.cancel()

    def _make_shared_vms(self, tasks: anyio.abc.TaskGroup) -> None:
        if self.plan.proxy is not None:
            self.proxy = SharedVm(
                self.control,
                self.plan.proxy.vm,
                idle_timeout=self.plan.proxy.idle_timeout,
                task_group=tasks,
            )
        for family in ("linux", "windows"):
            helper_id = getattr(self.plan.helpers, family)
            users = sum(1 for vm in self.resolved.vms if vm.os_family == family and vm.helper)
            if helper_id and users:
                self.helpers[family] = SharedVm(
                    self.control, helper_id, idle_timeout=0, task_group=tasks, pending=users
                )

    def _shared_vms(self) -> list[SharedVm]:
        return [*([self.proxy] if self.proxy else []), *self.helpers.values()]

    async def _shutdown_shared_vms(self) -> None:
        with anyio.CancelScope(shield=True):
            for shared in self._shared_vms():
                try:
                    await shared.shutdown()
                except AzRestoreError as exc:
                    shared.history.append(f"could not deallocate: {exc}")


class _VmChain:
    """One VM's chain of steps; a failed step ends the chain and marks the VM failed."""

    def __init__(
        self,
        observer: RestoreObserver | None,
        helpers: dict[str, SharedVm],
        uploads: DiskUploads,
        preparation: HelperPreparation,
        registration: VmRegistration,
    ) -> None:
        self.observer = observer
        self.helpers = helpers
        self.uploads = uploads
        self.preparation = preparation
        self.registration = registration

    async def restore_vm(self, vm: ResolvedVm, outcome: VmOutcome) -> None:
        helper = self.helpers.get(vm.os_family) if vm.helper else None
        try:
            disk_ids = await self.registration.restored_already(vm, outcome)
            if disk_ids is None:
                disk_ids = await self.uploads.upload_disks(vm, outcome)
                if helper is not None and not all(d.prepared for d in outcome.disks):
                    await self.preparation.prepare(vm, outcome, helper, disk_ids)
                    await self.uploads.mark_prepared(vm, outcome)
            await self.registration.register(vm, outcome, disk_ids)
            outcome.status = "succeeded"
            note_step(outcome, "done", self.observer)
        except AzRestoreError as exc:
            outcome.status = "failed"
            outcome.error = str(exc)
            note_step(outcome, "failed", self.observer)
        finally:
            if helper is not None:
                # The helper's count of users to come goes down, done or failed.
                with anyio.CancelScope(shield=True):
                    await helper.finished_with()
