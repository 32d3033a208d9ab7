"""Restore the VMs of a resolved plan into Azure, many at once.

Per VM, as the backup product this mirrors does it: upload every disk (through the proxy,
if one is used), mount the disks on the helper of the VM's OS family, prepare them with a
Run Command script, unmount, then register the VM from the prepared disks, power it on
and wait for the Azure agent. The VMs' chains run concurrently: while one uploads another
is prepared and a third registered. A failed VM does not stop the others; Ctrl-C stops
all. The proxy and helpers are always left deallocated and disk access always revoked.

Re-running a plan reuses what exists and is right: a disk in state Unattached whose
``azrestore-source`` tag matches the image is not uploaded again, an existing NIC or VM
is taken as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import anyio.abc

from ..azure.controlplane import ControlPlane
from ..azure.manageddisk import upload_into_ready_disk
from ..azure.pageblob import open_page_blob
from ..errors import AzRestoreError, ControlPlaneError, first_error
from ..sources.raw import open_raw_image
from ..transfer.budget import TransferBudget
from ..transfer.config import TransferConfig
from ..transfer.pipeline import upload_disk
from ..transfer.progress import ProgressCallback, ProgressEvent
from .plan import ResolvedDisk, ResolvedPlan, ResolvedVm
from .scripts import linux_prepare_command, windows_prepare_command
from .shared import SharedVm

SOURCE_TAG = "azrestore-source"
STORAGE_ACCOUNT_ENV = "AZRESTORE_STORAGE_ACCOUNT_ID"
RESULT_MARKER = "AZRESTORE-RESULT"


class RestoreObserver(Protocol):
    """What a live view subscribes to. Called on the event loop thread."""

    def step(self, vm: str, step: str) -> None: ...

    def disk_progress(self, vm: str, disk: str, event: ProgressEvent) -> None: ...


@dataclass
class DiskOutcome:
    path: str
    role: str
    lun: int | None
    disk_id: str | None = None
    bytes_uploaded: int = 0
    reused: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "role": self.role,
            "lun": self.lun,
            "disk_id": self.disk_id,
            "bytes_uploaded": self.bytes_uploaded,
            "reused": self.reused,
        }


@dataclass
class VmOutcome:
    name: str
    os: str
    generation: str
    status: str = "pending"
    vm_id: str | None = None
    error: str | None = None
    steps: list[str] = field(default_factory=list)
    disks: list[DiskOutcome] = field(default_factory=list)
    #: resources this VM's restore created or reused, reported if it fails
    resources: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "vm_id": self.vm_id,
            "os": self.os,
            "generation": self.generation,
            "disks": [disk.to_json() for disk in self.disks],
            "steps": self.steps,
            "error": self.error,
        }


@dataclass
class RestoreReport:
    vms: list[VmOutcome]
    left_in_azure: list[str]
    seconds: float
    shared_vms: dict[str, list[str]] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return all(vm.status == "succeeded" for vm in self.vms)

    def to_json(self) -> dict[str, Any]:
        return {
            "vms": [vm.to_json() for vm in self.vms],
            "left_in_azure": self.left_in_azure,
            "shared_vms": self.shared_vms,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class RestoreSettings:
    """Knobs of a run beyond the plan."""

    #: how long to wait for the VM agent to report Ready
    agent_timeout: float = 1200.0
    agent_poll_interval: float = 10.0
    #: at most this many disks upload at once (they share the bandwidth budget)
    parallel_uploads: int = 4


def source_tag(disk: ResolvedDisk) -> str:
    """A short digest of the image's identity, stored as a tag on its managed disk."""
    info = os.stat(disk.spec.path)
    text = json.dumps([str(disk.spec.path), info.st_size, info.st_mtime_ns, info.st_ino])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


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
        self._uploads = anyio.CapacityLimiter(self.settings.parallel_uploads)
        self._budget: TransferBudget | None = None
        self._helper_luns: dict[str, set[int]] = {}
        self._lun_lock = anyio.Lock()
        self.proxy: SharedVm | None = None
        self.helpers: dict[str, SharedVm] = {}

    # -- the run ------------------------------------------------------------------------

    async def run(self) -> RestoreReport:
        started = time.monotonic()
        # One budget of requests, buffers and bandwidth for every transfer of the run.
        self._budget = TransferBudget.from_config(self.config)
        outcomes = [VmOutcome(vm.name, vm.os_family, vm.generation) for vm in self.resolved.vms]
        async with anyio.create_task_group() as tasks:
            self._make_shared_vms(tasks)
            try:
                async with anyio.create_task_group() as chains:
                    for vm, outcome in zip(self.resolved.vms, outcomes, strict=True):
                        chains.start_soon(self._restore_vm, vm, outcome)
            finally:
                await self._shutdown_shared_vms()
                tasks.cancel_scope.cancel()
        left = [r for o in outcomes if o.status != "succeeded" for r in o.resources]
        shared = {vm.vm_id: vm.history for vm in self._shared_vms()}
        return RestoreReport(outcomes, left, time.monotonic() - started, shared)

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

    def _step(self, outcome: VmOutcome, step: str) -> None:
        outcome.steps.append(step)
        if self.observer is not None:
            self.observer.step(outcome.name, step)

    async def _restore_vm(self, vm: ResolvedVm, outcome: VmOutcome) -> None:
        helper = self.helpers.get(vm.os_family) if vm.helper else None
        try:
            disk_ids = await self._restored_already(vm, outcome)
            if disk_ids is None:
                disk_ids = await self._upload_disks(vm, outcome)
                if helper is not None:
                    await self._prepare(vm, outcome, helper, disk_ids)
            await self._register(vm, outcome, disk_ids)
            outcome.status = "succeeded"
            self._step(outcome, "done")
        except AzRestoreError as exc:
            outcome.status = "failed"
            outcome.error = str(exc)
            self._step(outcome, "failed")
        finally:
            if helper is not None:
                with anyio.CancelScope(shield=True):
                    await helper.finished_with()

    def _vm_id(self, vm: ResolvedVm) -> str:
        return (
            f"/subscriptions/{self.resolved.subscription}/resourceGroups/{vm.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachines/{vm.name}"
        )

    async def _restored_already(
        self, vm: ResolvedVm, outcome: VmOutcome
    ) -> dict[int | None, str] | None:
        """A VM registered by an earlier run from this plan's disks: its disks are done
        (uploaded and prepared); only powering on and the agent may remain."""
        existing = await self.control.get_vm(self._vm_id(vm))
        if existing is None:
            return None
        disk_ids = {disk.lun: self._disk_id(vm, disk) for disk in vm.disks}
        if (existing.os_disk_id or "").lower() != disk_ids[None].lower():
            raise ControlPlaneError(f"{existing.id}: a VM of that name exists with another OS disk")
        outcome.disks = [
            DiskOutcome(str(d.spec.path), d.spec.role, d.lun, disk_ids[d.lun], reused=True)
            for d in vm.disks
        ]
        return disk_ids

    # -- step 2: convert and upload -----------------------------------------------------

    def _disk_id(self, vm: ResolvedVm, disk: ResolvedDisk) -> str:
        return (
            f"/subscriptions/{self.resolved.subscription}/resourceGroups/{vm.resource_group}"
            f"/providers/Microsoft.Compute/disks/{disk.name}"
        )

    async def _upload_disks(self, vm: ResolvedVm, outcome: VmOutcome) -> dict[int | None, str]:
        self._step(outcome, "upload")
        disk_ids: dict[int | None, str] = {}
        outcome.disks = [DiskOutcome(str(d.spec.path), d.spec.role, d.lun) for d in vm.disks]

        async def one(disk: ResolvedDisk, result: DiskOutcome) -> None:
            disk_ids[disk.lun] = await self._upload_disk(vm, disk, result, outcome)

        try:
            async with anyio.create_task_group() as uploads:
                for disk, result in zip(vm.disks, outcome.disks, strict=True):
                    uploads.start_soon(one, disk, result)
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        return disk_ids

    async def _upload_disk(
        self, vm: ResolvedVm, disk: ResolvedDisk, result: DiskOutcome, outcome: VmOutcome
    ) -> str:
        disk_id = self._disk_id(vm, disk)
        result.disk_id = disk_id
        tag = await anyio.to_thread.run_sync(source_tag, disk)
        existing = await self.control.get_disk(disk_id)
        os_type = None
        if disk.lun is None:
            os_type = "Linux" if vm.os_family == "linux" else "Windows"
        if existing is None and self.plan.target.disks == "page-blob":
            await self._upload_and_import(vm, disk, result, disk_id, os_type, tag)
            outcome.resources.append(disk_id)
            return disk_id
        if existing is not None:
            outcome.resources.append(disk_id)
            if existing.tags.get(SOURCE_TAG) != tag:
                raise ControlPlaneError(
                    f"{disk_id}: a disk of that name exists and was not uploaded from"
                    f" {disk.spec.path} (tag {SOURCE_TAG} differs); delete or rename it"
                )
            helper_ids = {shared.vm_id.lower() for shared in self.helpers.values()}
            if existing.state == "Attached" and (existing.managed_by or "").lower() in helper_ids:
                # Left on a helper by an interrupted run: take it back.
                assert existing.managed_by is not None
                await self.control.set_data_disks(existing.managed_by, detach=(disk_id,))
                existing = await self.control.get_disk(disk_id) or existing
            if existing.state in ("Unattached", "Reserved"):
                result.reused = True
                return disk_id
            if existing.state == "Attached":
                raise ControlPlaneError(f"{disk_id}: attached to {existing.managed_by}")
            if existing.state == "ActiveUpload":
                await self.control.revoke(disk_id)
        else:
            await self.control.create_upload_disk(
                disk_id,
                location=self.plan.target.location,
                upload_size=disk.report.blob_size,
                os_type=os_type,
                hyper_v_generation=vm.generation,
                sku=disk.sku,
                tags={**vm.tags, SOURCE_TAG: tag},
            )
            outcome.resources.append(disk_id)

        async with self._uploads, self._proxy_in_use():
            with await open_raw_image(disk.spec.path) as image:
                transfer = await upload_into_ready_disk(
                    self.control,
                    image,
                    disk_id,
                    config=self.config,
                    on_progress=self._progress(vm, disk),
                    budget=self._budget,
                )
        result.bytes_uploaded = transfer.stats.bytes_uploaded
        return disk_id

    def _progress(self, vm: ResolvedVm, disk: ResolvedDisk) -> ProgressCallback:
        def progress(event: ProgressEvent) -> None:
            if self.observer is not None:
                self.observer.disk_progress(vm.name, str(disk.spec.path), event)

        return progress

    async def _upload_and_import(
        self,
        vm: ResolvedVm,
        disk: ResolvedDisk,
        result: DiskOutcome,
        disk_id: str,
        os_type: str | None,
        tag: str,
    ) -> None:
        """Page-blob mode: upload the VHD to the storage account, then create the managed
        disk from it (createOption Import). The page blob stays; delete it when done."""
        target = self.plan.target
        account_id = target.storage_account_id or os.environ.get(STORAGE_ACCOUNT_ENV)
        if not target.storage_account or not account_id:
            raise ControlPlaneError(
                "disks: page-blob needs target.storage_account and target.storage_account_id"
                f" (or {STORAGE_ACCOUNT_ENV})"
            )
        blob_url = f"{target.storage_account.rstrip('/')}/{target.container}/{disk.name}.vhd"
        async with self._uploads, self._proxy_in_use():
            with await open_raw_image(disk.spec.path) as image:
                async with open_page_blob(
                    blob_url,
                    checksum=self.config.checksum,
                    overwrite=True,
                    concurrency=self.config.concurrency,
                ) as sink:
                    transfer = await upload_disk(
                        image,
                        sink,
                        config=self.config,
                        on_progress=self._progress(vm, disk),
                        budget=self._budget,
                    )
        result.bytes_uploaded = transfer.stats.bytes_uploaded
        await self.control.create_import_disk(
            disk_id,
            location=target.location,
            source_uri=blob_url,
            storage_account_id=account_id,
            os_type=os_type,
            hyper_v_generation=vm.generation,
            sku=disk.sku,
            tags={**vm.tags, SOURCE_TAG: tag},
        )

    def _proxy_in_use(self) -> AbstractAsyncContextManager[None]:
        return nullcontext() if self.proxy is None else self.proxy.use()

    # -- steps 3 to 5: mount on the helper, prepare, unmount ----------------------------

    async def _prepare(
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
        self._step(outcome, "mount")
        await self.control.set_data_disks(helper.vm_id, attach=attach)
        try:
            async with helper.use():
                self._step(outcome, "prepare")
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
                self._step(outcome, "unmount")
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
            free = [lun for lun in range(64) if lun not in used][:count]
            if len(free) < count:
                raise ControlPlaneError(f"{helper_id}: no free LUNs on the helper")
            used.update(free)
            return free

    async def _give_luns(self, helper_id: str, luns: list[int]) -> None:
        async with self._lun_lock:
            self._helper_luns[helper_id].difference_update(luns)

    # -- step 6/7: register, power on, see the agent ------------------------------------

    async def _register(
        self, vm: ResolvedVm, outcome: VmOutcome, disk_ids: dict[int | None, str]
    ) -> None:
        self._step(outcome, "register")
        vm_id = self._vm_id(vm)
        nic_id = (
            f"/subscriptions/{self.resolved.subscription}/resourceGroups/{vm.resource_group}"
            f"/providers/Microsoft.Network/networkInterfaces/{vm.name}-nic"
        )
        outcome.vm_id = vm_id
        existing = await self.control.get_vm(vm_id)
        if existing is None:
            await self.control.ensure_nic(
                nic_id, subnet_id=vm.subnet, location=self.plan.target.location
            )
            outcome.resources.append(nic_id)
            await self.control.create_vm(
                vm_id,
                location=self.plan.target.location,
                size=vm.spec.size,
                os_disk_id=disk_ids[None],
                os_type="Linux" if vm.os_family == "linux" else "Windows",
                data_disks={lun: d for lun, d in disk_ids.items() if lun is not None},
                nic_id=nic_id,
                tags=vm.tags,
            )
            outcome.resources.append(vm_id)
        else:
            outcome.resources.append(vm_id)
        if vm.spec.power_on:
            info = await self.control.get_vm(vm_id)
            if info is not None and info.power_state != "running":
                self._step(outcome, "power on")
                await self.control.start_vm(vm_id)
            if vm.spec.wait_for_agent:
                self._step(outcome, "agent")
                await self.control.wait_agent_ready(
                    vm_id,
                    within=self.settings.agent_timeout,
                    interval=self.settings.agent_poll_interval,
                )


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
