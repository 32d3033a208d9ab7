"""Direct upload to a managed disk, the way Add-AzVhd does it: create the disk for upload,
grant write access, stream the VHD into its upload URL, and revoke access; and, for a disk
an interrupted run left open, continue from its journal, refuse, or start over."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import InputError, TargetExistsError
from ..formats.limits import (
    MAX_UPLOAD_SIZE,
    MIN_UPLOAD_SIZE,
    managed_disk_problem,
    os_disk_problem,
)
from ..formats.os_disk import os_disk_kind
from ..formats.sizes import blob_size
from ..sources.base import DiskSource
from ..sources.report import inspect_source
from ..transfer.config import TransferConfig
from ..transfer.journal import JournalError
from ..transfer.progress import ProgressCallback, TransferResult
from ..transfer.resume import ResumeOptions, forget_journal, journal_status
from .arm import ArmSettings
from .controlplane import ControlPlane
from .disks import DiskInfo
from .diskupload import (
    OPEN_STATES,
    DiskUploadStatus,
    begin_pending_disk_journal,
    disk_identity,
    disk_key,
    new_upload_tag,
    nothing_left,
    take_back_open_disk,
    upload_into_ready_disk,
)
from .resource_id import ResourceId

__all__ = [
    "MAX_UPLOAD_SIZE",
    "MIN_UPLOAD_SIZE",
    "DiskLeftOpen",
    "DiskUploadStatus",
    "ManagedDiskResult",
    "create_disk_and_upload",
    "detect_disk_kind",
    "may_continue_upload",
    "upload_into_ready_disk",
]

OsType = Literal["Linux", "Windows"]
Generation = Literal["V1", "V2"]


class DiskLeftOpen(InputError):
    """A disk open for upload (ReadyToUpload or ActiveUpload) that no journal here says
    this run may continue: refused before anything is written."""


@dataclass(frozen=True, slots=True)
class ManagedDiskResult:
    """What :func:`create_disk_and_upload` did."""

    disk_id: str
    disk_state: str
    os_type: str | None
    hyper_v_generation: str | None
    transfer: TransferResult

    def to_json(self) -> dict[str, Any]:
        data = self.transfer.to_json()
        data.update(
            disk_id=self.disk_id,
            disk_state=self.disk_state,
            os_type=self.os_type,
            hyper_v_generation=self.hyper_v_generation,
        )
        return data


async def detect_disk_kind(image: DiskSource) -> tuple[OsType | None, Generation]:
    """OS type and generation from the image's partition table: an OS disk's family
    (None when it is not recognisably an OS disk) and V2 for UEFI, V1 otherwise."""
    report = await inspect_source(image)
    kind = os_disk_kind(report.layout)
    os_type: OsType | None = (
        "Linux" if kind.family == "linux" else "Windows" if kind.family == "windows" else None
    )
    # Unsure of the firmware: V1 (this command's policy; a restore plan asks instead).
    generation: Generation = kind.generation or "V1"
    return os_type, generation


async def create_disk_and_upload(
    image: DiskSource,
    disk_id: str,
    *,
    location: str,
    config: TransferConfig,
    settings: ArmSettings,
    control: ControlPlane | None = None,
    os_type: OsType | Literal["auto", "none"] = "auto",
    hyper_v_generation: Generation | Literal["auto"] = "auto",
    sku: str = "Standard_LRS",
    tags: dict[str, str] | None = None,
    on_progress: ProgressCallback | None = None,
    resume: ResumeOptions | None = None,
    status: DiskUploadStatus | None = None,
) -> ManagedDiskResult:
    """Create managed disk ``disk_id`` (createOption Upload, the exact size) and upload
    ``image`` into it with :func:`upload_into_ready_disk`. Returns the disk's final state.

    ``os_type`` and ``hyper_v_generation`` default to what the image's partition table
    says. Bad input is refused before anything is created, Azure's size rules too: a
    managed disk is 20 MiB to 32 TiB, an OS disk at most 4 TiB and over 2 TiB only with
    generation V2.

    With ``resume`` (a journal directory; ``key`` is ignored: the disk's resource id
    names its journal), an upload that was interrupted continues: a disk found open for
    upload (ReadyToUpload or ActiveUpload) whose journal records an upload of this very
    image into this very disk gets access again and only what the journal lacks. An open
    disk without such a journal is refused (:class:`DiskLeftOpen`, before anything is
    written) unless ``resume.restart``, which deletes it and creates it again. A disk that
    exists and is not open for upload is refused (:class:`TargetExistsError`), as it is
    without ``resume``. ``status`` follows the disk's state, for a caller that is stopped
    midway (Ctrl-C) to say what it leaves behind.
    """
    ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
    if not location:
        raise InputError("a location is needed to create a managed disk (--location)")
    size = blob_size(image.size)
    problem = managed_disk_problem(image.size)
    if problem is not None:
        raise InputError(f"{image.path}: {problem}")
    detected_os, detected_generation = await detect_disk_kind(image)
    chosen_os = detected_os if os_type == "auto" else None if os_type == "none" else os_type
    generation = detected_generation if hyper_v_generation == "auto" else hyper_v_generation
    if generation == "V1" and detected_generation == "V2" and chosen_os is not None:
        raise InputError(
            f"{image.path}: the disk boots with UEFI (GPT with an EFI system partition), so it"
            " needs generation V2; V1 would not boot it"
        )
    if chosen_os is not None:
        problem = os_disk_problem(image.size, generation)
        if problem is not None:
            raise InputError(f"{image.path} (an OS disk, {chosen_os}): {problem}")
    status = status if status is not None else DiskUploadStatus(disk_id)

    async with AsyncExitStack() as stack:
        if control is None:
            control = await stack.enter_async_context(ControlPlane(settings))
        existing = await control.get_disk(disk_id)
        if existing is not None:
            status.disk_state = existing.state
            if resume is not None and await _uploaded_before(image, existing, resume, size):
                # A run stopped after it revoked access: the disk is done.
                return ManagedDiskResult(
                    disk_id=existing.id,
                    disk_state=existing.state,
                    os_type=existing.os_type,
                    hyper_v_generation=existing.hyper_v_generation,
                    transfer=nothing_left(image, existing.id, on_progress),
                )
        continuing = False
        if existing is not None and existing.state in OPEN_STATES and resume is not None:
            continuing = await may_continue_upload(image, existing, resume, size)
            if not continuing:  # restart: the disk goes, and is created again below
                await take_back_open_disk(control, existing, config=config)
                status.disk_state = None
                existing = None
        if existing is not None and not continuing:
            if existing.state in OPEN_STATES:
                raise _left_open(existing, image, "no journal was kept (no --journal-dir)")
            raise TargetExistsError(f"{disk_id}: the managed disk already exists")
        if not continuing:
            if resume is not None:
                await forget_journal(disk_key(disk_id), resume)  # of a disk that is gone
            all_tags = dict(tags or {})
            if resume is not None:
                # The journal first, naming the upload id the disk is tagged with: a run
                # killed while the disk is being created leaves a disk this journal fits.
                all_tags.update(new_upload_tag())
                status.journal = await begin_pending_disk_journal(
                    image, disk_id, size, all_tags, resume
                )
            status.disk_state = "Creating"
            await control.create_upload_disk(
                disk_id,
                location=location,
                upload_size=size,
                os_type=chosen_os,
                hyper_v_generation=generation,
                sku=sku,
                tags=all_tags,
            )
            status.disk_state, status.created = "ReadyToUpload", True
        transfer = await upload_into_ready_disk(
            control,
            image,
            disk_id,
            config=config,
            on_progress=on_progress,
            resume=resume,
            status=status,
        )
        final = await control.get_disk(disk_id)
    return ManagedDiskResult(
        disk_id=final.id if final else disk_id,
        disk_state=final.state if final else "unknown",
        os_type=final.os_type if final and continuing else chosen_os,
        hyper_v_generation=final.hyper_v_generation if final and continuing else generation,
        transfer=transfer,
    )


async def _uploaded_before(
    image: DiskSource, disk: DiskInfo, resume: ResumeOptions, size: int
) -> bool:
    """Whether ``disk``, found Unattached, is this very upload finished by an earlier run
    (its journal complete, of this image into this disk): a run stopped after it revoked
    access, before it said so, leaves nothing to do."""
    if resume.restart or disk.state != "Unattached" or disk.upload_size_bytes != size:
        return False
    try:
        found = await journal_status(image, disk_key(disk.id), disk_identity(disk), resume)
    except JournalError:
        return False  # damaged or held: the disk exists, as it is refused below
    return found.matches and found.complete


async def may_continue_upload(
    image: DiskSource, disk: DiskInfo, resume: ResumeOptions, size: int
) -> bool:
    """Whether the upload of ``image`` (VHD ``size`` bytes) into ``disk``, found open for
    upload, continues (True: its journal fits; pass ``resume`` on to
    :func:`upload_into_ready_disk`) or starts over (False, with ``resume.restart``: take
    the disk back with :func:`take_back_open_disk` and create it again); raises
    :class:`DiskLeftOpen` otherwise, before anything is written. The restore engine can
    make the same decision for each disk of a plan."""
    if resume.restart:
        try:
            await journal_status(image, disk_key(disk.id), disk_identity(disk), resume)
        except JournalError as exc:
            if "another azrestore" in str(exc):
                raise  # a run uploading into the disk right now: never delete it under it
        return False  # a damaged journal goes with the disk
    found = await journal_status(image, disk_key(disk.id), disk_identity(disk), resume)
    if found.matches and disk.upload_size_bytes == size:
        return True
    if not found.found:
        why = (
            f"no journal in {resume.directory} records an upload into it"
            " (lost, or another machine's)"
        )
    else:
        why = f"its journal ({found.path}) no longer fits: {'; '.join(found.changes)}"
    raise _left_open(disk, image, why)


def _left_open(disk: DiskInfo, image: DiskSource, why: str) -> DiskLeftOpen:
    return DiskLeftOpen(
        f"{disk.id}: the managed disk exists and is open for upload ({disk.state}), but"
        f" {image.path} cannot be continued into it: {why}; nothing was written. Use --restart"
        " to delete the disk and upload again, or revoke access to it and delete it"
        " yourself"
    )
