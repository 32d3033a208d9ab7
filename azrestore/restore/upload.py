"""Step 2 of a VM's restore: convert and upload its disks, as managed disks (direct
upload) or, in page-blob mode, as page blobs that managed disks are imported from.

A disk that an earlier run uploaded from the same image (its ``azrestore-source`` tag
matches) is reused as it is; one left attached to a helper by an interrupted run is
detached first.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import AbstractAsyncContextManager, nullcontext

import anyio
import anyio.to_thread

from ..azure.controlplane import ControlPlane
from ..azure.manageddisk import upload_into_ready_disk
from ..azure.pageblob import open_page_blob
from ..errors import ControlPlaneError, first_error
from ..sources.raw import open_raw_image
from ..transfer.budget import TransferBudget
from ..transfer.config import TransferConfig
from ..transfer.pipeline import upload_disk
from ..transfer.progress import ProgressCallback, ProgressEvent
from .outcome import RestoredDisk, RestoreObserver, VmOutcome, note_step
from .plan import ResolvedDisk, ResolvedPlan, ResolvedVm
from .settings import RestoreSettings
from .shared import SharedVm
from .targets import disk_resource_id

SOURCE_TAG = "azrestore-source"


def source_tag(disk: ResolvedDisk) -> str:
    """A short digest of the image's identity, stored as a tag on its managed disk."""
    info = os.stat(disk.spec.path)
    text = json.dumps([str(disk.spec.path), info.st_size, info.st_mtime_ns, info.st_ino])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


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
        os_type = None
        if disk.lun is None:
            os_type = "Linux" if vm.os_family == "linux" else "Windows"
        if existing is None and self.target.disks == "page-blob":
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
            if existing.state == "Attached" and (existing.managed_by or "").lower() in (
                self.helper_ids
            ):
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
                location=self.target.location,
                upload_size=disk.report.blob_size,
                os_type=os_type,
                hyper_v_generation=vm.generation,
                sku=disk.sku,
                tags={**vm.tags, SOURCE_TAG: tag},
            )
            outcome.resources.append(disk_id)

        async with self._slots, self._proxy_in_use():
            with await open_raw_image(disk.spec.path) as image:
                transfer = await upload_into_ready_disk(
                    self.control,
                    image,
                    disk_id,
                    config=self.config,
                    on_progress=self._progress(vm, disk),
                    budget=self.budget,
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
        result: RestoredDisk,
        disk_id: str,
        os_type: str | None,
        tag: str,
    ) -> None:
        """Page-blob mode: upload the VHD to the storage account, then create the managed
        disk from it (createOption Import). The page blob stays; delete it when done."""
        target = self.target
        account_id = target.storage_account_id or self.settings.storage_account_id
        if not target.storage_account or not account_id:
            raise ControlPlaneError(
                "disks: page-blob needs target.storage_account and target.storage_account_id"
                " (or AZRESTORE_STORAGE_ACCOUNT_ID)"
            )
        blob_url = f"{target.storage_account.rstrip('/')}/{target.container}/{disk.name}.vhd"
        async with self._slots, self._proxy_in_use():
            with await open_raw_image(disk.spec.path) as image:
                async with open_page_blob(
                    blob_url,
                    connection_string=self.settings.storage_connection_string,
                    checksum=self.config.checksum,
                    overwrite=True,
                    concurrency=self.config.concurrency,
                    proxy=self.control.proxy,
                ) as sink:
                    transfer = await upload_disk(
                        image,
                        sink,
                        config=self.config,
                        on_progress=self._progress(vm, disk),
                        budget=self.budget,
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
