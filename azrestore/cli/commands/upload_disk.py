"""The --to-disk form of the upload command: the disk's options made a target, and the
upload that, stopped by Ctrl-C or SIGTERM, says which disk it leaves open."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ...azure.arm import ArmSettings
from ...azure.resource_id import ResourceId
from ...jobs.upload import ManagedDiskTarget, upload_to_new_managed_disk
from ...transfer.config import TransferConfig
from ...transfer.resume import ResumeOptions
from ..progress import TransferProgress
from ..text import print_json
from .common import run, terminate_as_interrupt

if TYPE_CHECKING:
    from ...azure.manageddisk import ManagedDiskResult


def upload_to_disk(
    image: str,
    managed: ManagedDiskTarget,
    settings: ArmSettings,
    config: TransferConfig,
    resume: ResumeOptions,
    progress: TransferProgress,
    as_json: bool,
    image_format: str | None = None,
) -> ManagedDiskResult:
    """The --to-disk upload. Stopped by Ctrl-C or SIGTERM, it says which disk it leaves
    open for upload (on stderr, and with --json as a report on stdout) and ends with 130."""
    from ...azure.diskupload import DiskUploadStatus

    status = DiskUploadStatus(managed.disk_id)
    try:
        with terminate_as_interrupt():
            return run(
                upload_to_new_managed_disk(
                    image,
                    managed,
                    settings=settings,
                    config=config,
                    on_progress=progress,
                    resume=resume,
                    status=status,
                    image_format=image_format,
                )
            )
    except KeyboardInterrupt:
        left = status.left_behind()
        if as_json:
            print_json(
                {
                    "interrupted": True,
                    "disk_id": status.disk_id,
                    "disk_state": status.disk_state,
                    "access_open": status.access_open,
                    "created": status.created,
                    "journal": status.journal,
                    "error": f"interrupted: {left}",
                }
            )
        raise KeyboardInterrupt(left) from None


def managed_disk_target(
    disk_id: str, location: str | None, os_type: str, generation: str, sku: str
) -> ManagedDiskTarget:
    """Check the --to-disk options before anything is created."""
    ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
    if not location:
        raise typer.BadParameter("--to-disk needs --location (the disk's region)")
    os_types = {"auto": "auto", "none": "none", "linux": "Linux", "windows": "Windows"}
    if os_type.lower() not in os_types:
        raise typer.BadParameter(f"--os-type must be auto, linux, windows or none, not {os_type!r}")
    generations = {"auto": "auto", "v1": "V1", "v2": "V2"}
    if generation.lower() not in generations:
        raise typer.BadParameter(f"--generation must be auto, V1 or V2, not {generation!r}")
    return ManagedDiskTarget(
        disk_id,
        location,
        os_types[os_type.lower()],  # type: ignore[arg-type]
        generations[generation.lower()],  # type: ignore[arg-type]
        sku,
    )
