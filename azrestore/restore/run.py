"""Restore the VMs of a resolved plan into Azure, many at once.

Per VM, as the backup product this mirrors does it: upload every disk (through the proxy,
if one is used), mount the disks on a helper (batched with other VMs' disks, see
:mod:`.prepare`), prepare them with a Run Command script, unmount, then register the VM
from the prepared disks, power it on and wait for the Azure agent. The VMs' chains run
concurrently: while one uploads others are prepared and a third registered. A failed VM
does not stop the others; Ctrl-C stops all. The proxy and helpers are always left
deallocated (helpers the run created: deleted) and disk access always revoked.

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
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

from ..azure.controlplane import ControlPlane
from ..errors import AzRestoreError
from ..transfer.budget import TransferBudget
from ..transfer.config import TransferConfig
from .created import HelperCreation
from .outcome import RestoreObserver, RestoreReport, VmOutcome, note_step
from .plan import ResolvedPlan, ResolvedVm
from .prepare import HelperPool, HelperSetup
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
        #: per helper family, the pool its VMs wait in
        self.pools: dict[str, HelperPool] = {}
        #: per helper family, the helpers the run creates (``create: N``)
        self.creations: dict[str, HelperCreation] = {}

    async def run(self) -> RestoreReport:
        """Restore every VM; the report also goes to the observer's ``finished``, also
        when the run is cancelled (Ctrl-C) midway, its unfinished VMs then
        ``interrupted``."""
        started = time.monotonic()
        outcomes = [
            VmOutcome(vm.name, vm.os_family, vm.generation, security=vm.security.to_json())
            for vm in self.resolved.vms
        ]
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
        created = [h for c in self.creations.values() for h in c.helpers if h.created]
        left += [h.vm_id for h in created if not h.deleted]
        return RestoreReport(
            outcomes,
            left,
            time.monotonic() - started,
            shared,
            interrupted=interrupted,
            created_helpers=[h.to_json() for h in created],
            batches=[
                {"helper": b.helper, "vms": list(b.vms)}
                for pool in self.pools.values()
                for b in pool.batches
            ],
        )

    async def _run(self, outcomes: list[VmOutcome]) -> None:
        async with anyio.create_task_group() as tasks:
            self._make_shared_vms(tasks)
            chain = _VmChain(
                self.observer,
                self.pools,
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
                VmRegistration(
                    self.resolved, self.control, settings=self.settings, observer=self.observer
                ),
            )
            try:
                for family, pool in self.pools.items():
                    creation = self.creations.get(family)
                    for helper in pool.helpers:
                        tasks.start_soon(pool.serve, helper, self._setup(creation))
                async with anyio.create_task_group() as chains:
                    for vm, outcome in zip(self.resolved.vms, outcomes, strict=True):
                        chains.start_soon(chain.restore_vm, vm, outcome)
            finally:
                await self._shutdown_shared_vms()
                tasks.cancel_scope.cancel()

    def _setup(self, creation: HelperCreation | None) -> HelperSetup | None:
        if creation is None:
            return None

        async def create(helper: SharedVm) -> None:
            await creation.create(helper.vm_id)

        return create

    def _make_shared_vms(self, tasks: anyio.abc.TaskGroup) -> None:
        if self.plan.proxy is not None:
            self.proxy = SharedVm(
                self.control,
                self.plan.proxy.vm,
                idle_timeout=self.plan.proxy.idle_timeout,
                task_group=tasks,
            )
        for family in ("linux", "windows"):
            pool = self.plan.helpers.pool(family)
            users = sum(1 for vm in self.resolved.vms if vm.helper_family == family)
            if pool is None or not users:
                continue
            ids = list(pool.vm_ids)
            if pool.create is not None:
                creation = HelperCreation(self.control, self.resolved, family, pool.create)
                self.creations[family] = creation
                ids = [helper.vm_id for helper in creation.helpers]
            on_done = self._deleter(self.creations.get(family))
            helpers = [
                SharedVm(
                    self.control,
                    vm_id,
                    idle_timeout=0,
                    task_group=tasks,
                    pending=1,
                    on_done=on_done,
                )
                for vm_id in ids
            ]
            for helper in helpers:
                self.helpers[helper.vm_id] = helper
            self.pools[family] = HelperPool(
                self.control,
                family,
                helpers,
                users=users,
                window=self.settings.batch_window,
                max_wait=self.settings.batch_max_wait,
                job_timeout=self.settings.job_timeout,
                observer=self.observer,
            )

    @staticmethod
    def _deleter(creation: HelperCreation | None) -> Callable[[str], Awaitable[str]] | None:
        return None if creation is None else creation.delete

    def _shared_vms(self) -> list[SharedVm]:
        return [*([self.proxy] if self.proxy else []), *self.helpers.values()]

    async def _shutdown_shared_vms(self) -> None:
        with anyio.CancelScope(shield=True):
            for shared in self._shared_vms():
                try:
                    await shared.shutdown()
                except AzRestoreError as exc:
                    shared.history.append(f"could not deallocate: {exc}")
            for creation in self.creations.values():
                await creation.delete_all()


class _VmChain:
    """One VM's chain of steps; a failed step ends the chain and marks the VM failed."""

    def __init__(
        self,
        observer: RestoreObserver | None,
        pools: dict[str, HelperPool],
        uploads: DiskUploads,
        registration: VmRegistration,
    ) -> None:
        self.observer = observer
        self.pools = pools
        self.uploads = uploads
        self.registration = registration

    async def restore_vm(self, vm: ResolvedVm, outcome: VmOutcome) -> None:
        pool = self.pools.get(vm.helper_family) if vm.helper_family else None
        try:
            disk_ids = await self.registration.restored_already(vm, outcome)
            if disk_ids is None:
                disk_ids = await self.uploads.upload_disks(vm, outcome)
                if pool is not None and not all(d.prepared for d in outcome.disks):
                    await pool.prepare(vm, outcome, disk_ids)
                    await self.uploads.mark_prepared(vm, outcome)
            if pool is not None:
                pool.leave(vm.name)
            await self.registration.register(vm, outcome, disk_ids)
            outcome.status = "succeeded"
            note_step(outcome, "done", self.observer)
        except AzRestoreError as exc:
            outcome.status = "failed"
            outcome.error = str(exc)
            note_step(outcome, "failed", self.observer)
        finally:
            if pool is not None:
                # One VM fewer to come to the helpers, done or failed.
                pool.leave(vm.name)
