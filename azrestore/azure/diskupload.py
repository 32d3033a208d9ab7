"""Writing an image into a managed disk created for upload: grant write access, stream the
VHD into its upload URL (resumable, with a journal filed under the disk's resource id),
revoke access; and taking back a disk that an interrupted upload left open.

A disk left open by an interrupted run stays ActiveUpload: Azure checks the VHD footer
when access is revoked and refuses an incomplete upload (InvalidVhd), and refuses to
delete a disk while access is granted. So an interrupted upload leaves access open (the
next run grants access again and sends what its journal lacks), and taking such a disk
back writes a valid footer first, then revokes and deletes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import anyio

from ..errors import AuthenticationExpired, AzRestoreError
from ..formats.sizes import FOOTER_SIZE, blob_size, virtual_size
from ..formats.vhd import fixed_vhd_footer
from ..sources.base import DiskSource
from ..transfer.budget import TransferBudget
from ..transfer.config import TransferConfig
from ..transfer.pipeline import upload_disk
from ..transfer.progress import Accounting, ProgressCallback, TransferResult
from ..transfer.resume import ResumeOptions, start_journal
from ..transfer.sink import TargetIdentity
from .controlplane import ControlPlane
from .disks import DiskInfo
from .pageblob import PageBlobSink, open_page_blob
from .resource_id import ResourceId

#: How long the write SAS lives; access is revoked as soon as the upload ends anyway.
ACCESS_SECONDS = 24 * 3600
#: Revoking may not hang a failed run for ever.
_REVOKE_TIMEOUT = 600.0
#: The disk states of a disk created for upload whose upload has not ended.
OPEN_STATES = frozenset({"ReadyToUpload", "ActiveUpload"})
#: The tag that names the upload which created a disk: a random id, written in the
#: journal before the disk is created, so that a run killed while the disk is being
#: created leaves a disk that the same command knows as its own.
UPLOAD_TAG = "azrestore-upload"


def disk_key(disk_id: str) -> str:
    """The name a disk's resume journal is filed under: its resource id, in Azure's case
    (resource ids are case-insensitive, so the key is lower-cased)."""
    return str(ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")).lower()


def disk_identity(disk: DiskInfo) -> TargetIdentity:
    """A disk's identity for a journal: its resource id, upload size, and what changes
    when it is deleted and re-created: the upload id a run tagged it with when it created
    it (:data:`UPLOAD_TAG`, known before the disk exists), else uniqueId and timeCreated."""
    tag = disk.tags.get(UPLOAD_TAG)
    if tag:
        created: str | None = f"upload {tag}"
    else:
        created = " ".join(part for part in (disk.unique_id, disk.time_created) if part) or None
    return TargetIdentity(disk_key(disk.id), disk.upload_size_bytes or -1, created)


def new_upload_tag() -> dict[str, str]:
    """A fresh upload id, as the tag a disk about to be created carries."""
    return {UPLOAD_TAG: secrets.token_hex(8)}


@dataclass
class DiskUploadStatus:
    """Where an upload into a managed disk stands, kept up to date while it runs, so that
    a caller stopped by Ctrl-C can say what it leaves behind.

    ``disk_state`` is the state the disk is known to be in (None before it is looked at);
    ``access_open`` whether write access was granted and not revoked; ``created`` whether
    this run created the disk; ``journal`` where its resume journal is.
    """

    disk_id: str
    disk_state: str | None = None
    access_open: bool = False
    created: bool = False
    journal: str | None = None
    notes: list[str] = field(default_factory=list)

    def left_behind(self) -> str:
        """What an interrupted run leaves in Azure, in words (for its error line)."""
        if self.disk_state is None:
            return f"the managed disk {self.disk_id} was not created"
        if self.disk_state == "Creating" and self.journal is not None:
            return (
                f"the managed disk {self.disk_id} was being created and may exist"
                " (ReadyToUpload); run the same command again to continue it, or with"
                " --restart to start over"
            )
        if self.disk_state == "Creating":
            return (
                f"the managed disk {self.disk_id} was being created and may exist"
                " (ReadyToUpload); run the same command again with --restart"
            )
        if self.access_open:
            return (
                f"the managed disk {self.disk_id} is left open for upload ({self.disk_state};"
                " write access left open, not revoked: Azure refuses to revoke an incomplete"
                " upload); run the same command again to continue it, or with --restart"
                " to delete it and start over"
            )
        if self.disk_state in OPEN_STATES:
            return (
                f"the managed disk {self.disk_id} is left {self.disk_state}; run the same"
                " command again to continue it, or with --restart to start over"
            )
        return f"the managed disk {self.disk_id} is {self.disk_state}"


class DiskUploadSink:
    """A managed disk's upload URL as a sink whose journal is the disk's: filed under the
    disk's resource id and identified by the disk (its SAS URL changes at every grant)."""

    def __init__(self, blob: PageBlobSink, control: ControlPlane, disk_id: str) -> None:
        self._blob = blob
        self._control = control
        self._disk_id = disk_id
        self.target_key = disk_key(disk_id)
        #: a disk created for upload reads as zeros until written
        self.fresh = True

    @property
    def description(self) -> str:
        return self._blob.description

    async def prepare(self, size: int) -> None:
        await self._blob.prepare(size)  # the blob exists: its size is checked

    def digest(self, data: memoryview) -> bytes | None:
        return self._blob.digest(data)

    async def write(self, offset: int, data: memoryview, digest: bytes | None) -> None:
        await self._blob.write(offset, data, digest)

    async def renew(self, error: AuthenticationExpired) -> bool:
        return await self._blob.renew(error)

    async def identity(self) -> TargetIdentity | None:
        disk = await self._control.get_disk(self._disk_id)
        return None if disk is None else disk_identity(disk)


async def begin_disk_journal(
    control: ControlPlane, image: DiskSource, disk_id: str, resume: ResumeOptions
) -> str:
    """Start the journal of an upload into ``disk_id``, just created, before access is
    granted: a run killed after this leaves a disk that the same command continues."""
    disk = await control.get_disk(disk_id)
    if disk is None:
        raise AzRestoreError(f"{disk_id}: the managed disk is gone right after it was created")
    path = await start_journal(
        image, disk_key(disk_id), disk_identity(disk), resume, virtual_size(image.size)
    )
    return str(path)


async def begin_pending_disk_journal(
    image: DiskSource, disk_id: str, upload_size: int, tags: dict[str, str], resume: ResumeOptions
) -> str:
    """Start the journal of an upload into ``disk_id`` before the disk is created (with
    ``tags``, from :func:`new_upload_tag`, and ``upload_size``): a run killed from here
    on, even while the disk is being created, leaves a disk the same command continues."""
    identity = TargetIdentity(disk_key(disk_id), upload_size, f"upload {tags[UPLOAD_TAG]}")
    path = await start_journal(image, disk_key(disk_id), identity, resume, virtual_size(image.size))
    return str(path)


async def upload_into_ready_disk(
    control: ControlPlane,
    image: DiskSource,
    disk_id: str,
    *,
    config: TransferConfig,
    on_progress: ProgressCallback | None = None,
    budget: TransferBudget | None = None,
    resume: ResumeOptions | None = None,
    status: DiskUploadStatus | None = None,
) -> TransferResult:
    """Grant write access to a disk created for upload (ReadyToUpload, or ActiveUpload
    when an earlier run was interrupted), upload ``image`` into its upload URL (an existing
    page blob of exactly the VHD's size) and revoke access (Azure checks the VHD then).

    With ``resume`` the upload keeps a journal filed under the disk's resource id and
    continues the one an interrupted run left (the caller decides beforehand that it fits:
    see :func:`~azrestore.azure.manageddisk.create_disk_and_upload`). Cancelled (Ctrl-C),
    access is left open, because Azure would refuse to revoke an incomplete VHD and the
    next run continues through it; on another failure, revoking is tried (shielded), and
    the error says what became of the disk. ``status`` follows the disk's state."""
    status = status if status is not None else DiskUploadStatus(disk_id)
    if resume is not None:
        resume = ResumeOptions(
            directory=resume.directory, key=disk_key(disk_id), sync_interval=resume.sync_interval
        )
    sas_url = await control.grant_write(disk_id, ACCESS_SECONDS)
    status.disk_state, status.access_open = "ActiveUpload", True

    async def grant_again() -> str:
        # A SAS that expired mid-upload (403 AuthenticationFailed): grant access again
        # and carry on with the new upload URL.
        return await control.grant_write(disk_id, ACCESS_SECONDS)

    try:
        async with open_page_blob(
            sas_url,
            checksum=config.checksum,
            existing=True,
            concurrency=config.slots,
            credential_refresher=grant_again,
            proxy=control.proxy,
        ) as blob:
            sink = DiskUploadSink(blob, control, disk_id)
            transfer = await upload_disk(
                image, sink, config=config, on_progress=on_progress, budget=budget, resume=resume
            )
    except Exception as exc:
        # A failure (not an interruption): revoke as before, so that a disk whose VHD is
        # complete is not left billed; Azure refuses an incomplete one (InvalidVhd) and
        # the disk stays ActiveUpload, which the next run continues.
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(_REVOKE_TIMEOUT):
                    await control.revoke(disk_id)
                status.disk_state, status.access_open = "Unattached", False
                revoked = "access revoked"
            except (AzRestoreError, TimeoutError) as revoke_error:
                revoked = (
                    f"revoking access failed too ({revoke_error}): it stays open for upload"
                    " (ActiveUpload); run the same command again to continue"
                    if resume is not None
                    else f"revoking access failed too ({revoke_error})"
                )
        if isinstance(exc, AzRestoreError):
            exc.args = (f"{exc}; the disk {disk_id} was left in Azure, not uploaded; {revoked}",)
        raise
    await control.revoke(disk_id)
    status.disk_state, status.access_open = "Unattached", False
    return transfer


def nothing_left(
    image: DiskSource, disk_id: str, on_progress: ProgressCallback | None = None
) -> TransferResult:
    """The result of an upload that an earlier run finished: the whole VHD resumed,
    nothing sent."""
    size = blob_size(image.size)
    accounting = Accounting(
        disk_size=image.size,
        virtual_size=virtual_size(image.size),
        blob_size=size,
        subscribers=[on_progress] if on_progress is not None else [],
    )
    accounting.start()
    accounting.resumed(0, size)
    return TransferResult(accounting.finish(), disk_id)


async def take_back_open_disk(
    control: ControlPlane, disk: DiskInfo, *, config: TransferConfig
) -> None:
    """Delete a disk that an interrupted upload left open (``--restart``). Azure refuses
    to delete it while access is granted and to revoke access to an incomplete VHD, so an
    ActiveUpload disk first gets a valid fixed VHD footer (its contents are thrown away
    with it), then access is revoked."""
    if disk.state == "ActiveUpload":
        size = disk.upload_size_bytes or blob_size(disk.size_bytes or 0)
        sas_url = await control.grant_write(disk.id, 3600)
        async with open_page_blob(
            sas_url, existing=True, checksum=config.checksum, proxy=control.proxy
        ) as blob:
            footer = memoryview(fixed_vhd_footer(size - FOOTER_SIZE))
            await blob.write(size - FOOTER_SIZE, footer, blob.digest(footer))
        await control.revoke(disk.id)
    await control.delete_disk(disk.id)
