"""Step 2 of a VM's restore: convert and upload its disks, as managed disks (direct
upload) or, in page-blob mode, as page blobs that managed disks are imported from.

A disk that an earlier run uploaded from the same image (its ``azrestore-source`` tag
matches) is reused as it is; one left attached to a helper by an interrupted run is
detached first; one left open for upload continues from its journal (when the run keeps
journals), or is deleted and uploaded again (``restart``).
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import AbstractAsyncContextManager, nullcontext

import anyio
import anyio.to_thread

from ..azure.controlplane import ControlPlane
from ..azure.disks import DiskInfo
from ..azure.diskupload import (
    OPEN_STATES,
    DiskUploadStatus,
    begin_disk_journal,
    disk_identity,
    disk_key,
    take_back_open_disk,
)
from ..azure.manageddisk import DiskLeftOpen, may_continue_upload, upload_into_ready_disk
from ..azure.pageblob import open_page_blob
from ..errors import ControlPlaneError, first_error
from ..formats.sizes import blob_size
from ..sources.base import DiskSource
from ..sources.locations import is_url
from ..sources.open import open_source
from ..transfer.budget import TransferBudget
from ..transfer.config import TransferConfig
from ..transfer.pipeline import upload_disk
from ..transfer.progress import ProgressCallback, ProgressEvent
from ..transfer.resume import ResumeOptions, forget_journal, journal_status
from .outcome import RestoredDisk, RestoreObserver, VmOutcome, note_step
from .plan import ResolvedDisk, ResolvedPlan, ResolvedVm
from .settings import RestoreSettings
from .shared import SharedVm
from .targets import disk_resource_id

#: The tag naming the image a managed disk was uploaded from (:func:`source_tag`).
SOURCE_TAG = "azrestore-source"
#: The tag a disk gets once the helper has prepared it: the source tag it was prepared
#: from, so that a run again skips the preparation of a VM whose disks are all done.
PREPARED_TAG = "azrestore-prepared"


def source_tag(disk: ResolvedDisk) -> str:
    """A short digest of the image's identity, stored as a tag on its managed disk: of
    every file of its backing chain, the path, size, inode and device, modification and
    change times (an NBD export: its URL, as written)."""
    files = [link.path for link in disk.report.chain] or [disk.spec.path]
    parts: list[object] = [disk.spec.format or disk.report.format]
    for location in files:
        if is_url(location):
            parts.append(location)
            continue
        info = os.stat(location)
        parts.append(
            [
                str(location),
                info.st_size,
                info.st_mtime_ns,
                info.st_ino,
                info.st_dev,
                info.st_ctime_ns,
            ]
        )
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


class DiskUploads:
    """The disk transfers of one run: at most ``settings.parallel_uploads`` at once, all
    under one ``budget``, each holding the ``proxy`` running while it sends."""

    def __init__(
        self,
        resolved: ResolvedPlan,
        control: ControlPlane,
        *,
        config: TransferConfig,
        settings: RestoreSettings,
        budget: TransferBudget,
        proxy: SharedVm | None,
        helper_ids: set[str],
        observer: RestoreObserver | None,
    ) -> None:
        self.resolved = resolved
        self.target = resolved.plan.target
        self.control = control
        self.config = config
        self.settings = settings
        self.budget = budget
        self.proxy = proxy
        #: lower-cased: a disk found attached to one of these was left by an interrupted run
        self.helper_ids = {vm_id.lower() for vm_id in helper_ids}
        self.observer = observer
        self._slots = anyio.CapacityLimiter(settings.parallel_uploads)

    async def upload_disks(self, vm: ResolvedVm, outcome: VmOutcome) -> dict[int | None, str]:
        """Upload (or reuse) every disk of ``vm``; the managed disk ids by LUN (None: OS)."""
        note_step(outcome, "upload", self.observer)
        disk_ids: dict[int | None, str] = {}
        outcome.disks = [RestoredDisk(str(d.spec.path), d.spec.role, d.lun) for d in vm.disks]

        async def one(disk: ResolvedDisk, result: RestoredDisk) -> None:
            disk_ids[disk.lun] = await self._upload_disk(vm, disk, result, outcome)

        try:
            async with anyio.create_task_group() as uploads:
                for disk, result in zip(vm.disks, outcome.disks, strict=True):
                    uploads.start_soon(one, disk, result)
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        return disk_ids

    async def _upload_disk(
        self, vm: ResolvedVm, disk: ResolvedDisk, result: RestoredDisk, outcome: VmOutcome
    ) -> str:
        disk_id = disk_resource_id(self.resolved.subscription, vm, disk)
        result.disk_id = disk_id
        tag = await anyio.to_thread.run_sync(source_tag, disk)
        existing = await self.control.get_disk(disk_id)
        if existing is None and self.target.disks == "page-blob":
            await self._upload_and_import(vm, disk, result, disk_id, tag)
            outcome.resources.append(disk_id)
            return disk_id
        if existing is not None:
            outcome.resources.append(disk_id)
            if existing.tags.get(SOURCE_TAG) != tag:
                raise ControlPlaneError(
                    f"{disk_id}: a disk of that name exists and was not uploaded from"
                    f" {disk.spec.path} (tag {SOURCE_TAG} differs); delete or rename it"
                )
            if existing.state == "Attached" and (existing.managed_by or "").lower() in (
                self.helper_ids
            ):
                # Left on a helper by an interrupted run: take it back.
                assert existing.managed_by is not None
                await self.control.set_data_disks(existing.managed_by, detach=(disk_id,))
                existing = await self.control.get_disk(disk_id) or existing
            if existing.state in ("Unattached", "Reserved"):
                result.reused = True
                result.prepared = existing.tags.get(PREPARED_TAG) == tag
                return disk_id
            if existing.state not in OPEN_STATES:
                raise ControlPlaneError(
                    f"{disk_id}: the disk is {existing.state}"
                    + (f" (to {existing.managed_by})" if existing.managed_by else "")
                )
        status = result.upload = DiskUploadStatus(disk_id)
        async with self._slots, self._proxy_in_use():
            with await open_source(disk.spec.path, image_format=disk.spec.format) as image:
                if existing is not None and not await self._may_continue(image, existing):
                    existing = None  # deleted: uploaded again from the start
                if existing is None:
                    await self._create_for_upload(vm, disk, image, disk_id, tag, status)
                    if disk_id not in outcome.resources:
                        outcome.resources.append(disk_id)
                else:
                    status.disk_state = existing.state
                transfer = await upload_into_ready_disk(
                    self.control,
                    image,
                    disk_id,
                    config=self.config,
                    on_progress=self._progress(vm, disk),
                    budget=self.budget,
                    resume=self._resume(),
                    status=status,
                )
        result.bytes_uploaded = transfer.stats.bytes_uploaded
        return disk_id

    async def mark_prepared(self, vm: ResolvedVm, outcome: VmOutcome) -> None:
        """Tag every disk of ``vm`` prepared (from the image its source tag names), so
        that a run again, stopped before the VM was registered, does not prepare it twice."""
        for disk, result in zip(vm.disks, outcome.disks, strict=True):
            if result.disk_id is not None:
                tag = await anyio.to_thread.run_sync(source_tag, disk)
                await self.control.add_disk_tags(result.disk_id, {PREPARED_TAG: tag})
                result.prepared = True

    def _resume(self) -> ResumeOptions | None:
        directory = self.settings.journal_dir
        return None if directory is None else ResumeOptions(directory, self.settings.restart)

    async def _may_continue(self, image: DiskSource, disk: DiskInfo) -> bool:
        """A disk an earlier run left open for upload: True to continue it from its
        journal; False once it is deleted (``restart``); else :class:`DiskLeftOpen`."""
        resume = self._resume()
        if resume is None:
            raise DiskLeftOpen(
                f"{disk.id}: the managed disk was left open for upload ({disk.state}) by an"
                " earlier run, and this run keeps no journal to continue it; run with a"
                " journal folder, or revoke access to the disk and delete it"
            )
        if disk.state == "ReadyToUpload" and not resume.restart:
            found = await journal_status(image, disk_key(disk.id), disk_identity(disk), resume)
            if not found.found:
                # Created by a run stopped before it began the disk's journal (its source
                # tag is this image's): no access was ever granted, nothing written.
                await begin_disk_journal(self.control, image, disk.id, resume)
                return True
        if await may_continue_upload(image, disk, resume, blob_size(image.size)):
            return True
        await take_back_open_disk(self.control, disk, config=self.config)
        return False

    async def _create_for_upload(
        self,
        vm: ResolvedVm,
        disk: ResolvedDisk,
        image: DiskSource,
        disk_id: str,
        tag: str,
        status: DiskUploadStatus,
    ) -> None:
        resume = self._resume()
        if resume is not None:
            await forget_journal(disk_key(disk_id), resume)  # of a disk that is gone
        status.disk_state = "Creating"
        await self.control.create_upload_disk(
            disk_id,
            location=self.target.location,
            upload_size=disk.report.blob_size,
            os_type=_os_type(vm, disk),
            hyper_v_generation=vm.generation,
            sku=disk.sku,
            tags={**vm.tags, SOURCE_TAG: tag},
            security_type=_security_type(vm, disk),
        )
        status.disk_state, status.created = "ReadyToUpload", True
        if resume is not None:
            status.journal = await begin_disk_journal(self.control, image, disk_id, resume)

    def _progress(self, vm: ResolvedVm, disk: ResolvedDisk) -> ProgressCallback:
        def progress(event: ProgressEvent) -> None:
            if self.observer is not None:
                self.observer.disk_progress(vm.name, str(disk.spec.path), event)

        return progress

    async def _upload_and_import(
        self,
        vm: ResolvedVm,
        disk: ResolvedDisk,
        result: RestoredDisk,
        disk_id: str,
        tag: str,
    ) -> None:
        """Page-blob mode: upload the VHD to the storage account (leased while it is
        written, resumable from its journal), then create the managed disk from it
        (createOption Import). The page blob stays; delete it when done."""
        target = self.target
        account_id = target.storage_account_id or self.settings.storage_account_id
        if not target.storage_account or not account_id:
            raise ControlPlaneError(
                "disks: page-blob needs target.storage_account and target.storage_account_id"
                " (or AZRESTORE_STORAGE_ACCOUNT_ID)"
            )
        blob_url = page_blob_url(target.storage_account, target.container, vm, disk)
        result.blob_url = blob_url
        async with self._slots, self._proxy_in_use():
            with await open_source(disk.spec.path, image_format=disk.spec.format) as image:
                async with open_page_blob(
                    blob_url,
                    connection_string=self.settings.storage_connection_string,
                    checksum=self.config.checksum,
                    overwrite=True,
                    concurrency=self.config.slots,
                    proxy=self.control.proxy,
                ) as sink:
                    transfer = await upload_disk(
                        image,
                        sink,
                        config=self.config,
                        on_progress=self._progress(vm, disk),
                        budget=self.budget,
                        resume=self._resume(),
                    )
        result.bytes_uploaded = transfer.stats.bytes_uploaded
        await self.control.create_import_disk(
            disk_id,
            location=target.location,
            source_uri=blob_url,
            storage_account_id=account_id,
            os_type=_os_type(vm, disk),
            hyper_v_generation=vm.generation,
            sku=disk.sku,
            tags={**vm.tags, SOURCE_TAG: tag},
            security_type=_security_type(vm, disk),
        )

    def _proxy_in_use(self) -> AbstractAsyncContextManager[None]:
        return nullcontext() if self.proxy is None else self.proxy.use()


def _os_type(vm: ResolvedVm, disk: ResolvedDisk) -> str | None:
    """The osType of an OS disk (None for a data disk)."""
    if disk.lun is not None:
        return None
    return "Linux" if vm.os_family == "linux" else "Windows"


def _security_type(vm: ResolvedVm, disk: ResolvedDisk) -> str | None:
    """The OS disk of a Trusted Launch VM is created for it (securityProfile); others not."""
    return "TrustedLaunch" if disk.lun is None and vm.security.trusted_launch else None


def page_blob_url(account_url: str, container: str, vm: ResolvedVm, disk: ResolvedDisk) -> str:
    """Where page-blob mode writes a disk's VHD: under its resource group's name, lower
    case as Azure compares disk names, so that two plans restoring a disk of one name into
    two resource groups through one storage account never share a blob."""
    name = f"{vm.resource_group}/{disk.name}".lower()
    return f"{account_url.rstrip('/')}/{container}/{name}.vhd"
