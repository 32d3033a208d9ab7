"""``azrestore upload``: disk images (of any format, or NBD exports) into page blobs (one,
or many under one budget from IMAGE=URL pairs or --manifest), or one into a new managed
disk (--to-disk).

The command checks its options, calls one job of :mod:`azrestore.jobs`, and renders the
result; the storage connection string and Resource Manager settings come from the
environment here, never in the jobs.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ...azure.arm import ArmSettings
from ...formats.sizes import MiB
from ...jobs.bulk import upload_entries
from ...jobs.manifest import ManifestEntry, parse_pair, read_manifest
from ...jobs.upload import (
    BlobTarget,
    upload_to_page_blob,
)
from ...redact import redact_text, redact_url
from ...transfer.config import Checksum, TransferConfig
from ...transfer.resume import ResumeOptions
from ..environment import CONNECTION_STRING_ENV, default_journal_dir
from ..progress import BulkProgress, TransferProgress, bulk_summary_line, summary_line, verify_line
from ..text import error_line, one_line, print_json
from .common import (
    DEFAULTS,
    IMAGE_HELP,
    ConnectionStringOption,
    FormatOption,
    JsonOption,
    proxy_settings,
    reporting,
    run,
    size_option,
)
from .upload_disk import managed_disk_target, upload_to_disk

if TYPE_CHECKING:
    from ...transfer.scheduler import DiskOutcome
    from ...transfer.verify import VerifyResult


def upload(
    ctx: typer.Context,
    images: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="IMAGE | IMAGE=URL ...",
            help=IMAGE_HELP + " With --to or --to-disk, one image; or one or more IMAGE=URL"
            " pairs, uploaded together under one budget.",
            show_default=False,
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="The page blob URL: with a SAS token, or with an account key from"
            f" --connection-string or the {CONNECTION_STRING_ENV} variable, or else Azure AD.",
            show_default=False,
        ),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            metavar="FILE",
            help="Disks to upload: a JSON or YAML list of {image, to[, name, format]}, or"
            " lines 'IMAGE URL'. Images are relative to the file's directory; an entry's"
            " format wins over --format.",
            show_default=False,
        ),
    ] = None,
    to_disk: Annotated[
        str | None,
        typer.Option(
            "--to-disk",
            metavar="DISK_ID",
            help="Upload into a new managed disk instead (direct upload, like Add-AzVhd);"
            " DISK_ID is its resource id (see above).",
            show_default=False,
        ),
    ] = None,
    location: Annotated[
        str | None,
        typer.Option(help="With --to-disk: the disk's region.", show_default=False),
    ] = None,
    os_type: Annotated[
        str,
        typer.Option(
            "--os-type",
            help="With --to-disk: auto (from the partition table), linux, windows or none.",
        ),
    ] = "auto",
    generation: Annotated[
        str,
        typer.Option(help="With --to-disk: auto (UEFI: V2, BIOS: V1), V1 or V2."),
    ] = "auto",
    sku: Annotated[str, typer.Option(help="With --to-disk: the disk's SKU.")] = "Standard_LRS",
    as_json: JsonOption = False,
    concurrency: Annotated[
        int | None,
        typer.Option(
            show_default=False,
            help="Requests in flight (and chunk buffers held) at once, fixed"
            " [default: found from the link, up to 32].",
        ),
    ] = None,
    chunk_size: Annotated[
        int,
        typer.Option(
            parser=size_option,
            metavar="SIZE",
            show_default=False,
            help="Bytes read per chunk, also the largest request (at most 4MiB)"
            f" [default: {DEFAULTS.chunk_size // MiB}MiB].",
        ),
    ] = DEFAULTS.chunk_size,
    checksum: Annotated[
        Checksum, typer.Option(case_sensitive=False, help="Integrity check sent with each page.")
    ] = DEFAULTS.checksum,
    max_bandwidth: Annotated[
        int | None,
        typer.Option(
            parser=size_option,
            metavar="RATE",
            show_default=False,
            help="Cap on bytes per second sent, e.g. 200MB or 50MiB.",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the blob if it exists.")
    ] = False,
    connection_string: ConnectionStringOption = None,
    existing: Annotated[
        bool,
        typer.Option(
            "--existing",
            help="Write into a page blob that already exists with exactly the VHD's size"
            " (such as a managed disk's upload URL) instead of creating one.",
        ),
    ] = False,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            help="Forget the journal of an interrupted upload and start over (replacing the blob).",
        ),
    ] = False,
    journal_dir: Annotated[
        Path | None,
        typer.Option(
            "--journal-dir",
            metavar="DIR",
            help="Where resume journals live (default: journals/ in $AZRESTORE_STATE_DIR,"
            " else in $XDG_STATE_HOME/azrestore or ~/.local/state/azrestore).",
            show_default=False,
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Read every disk back once uploaded and compare it with its image.",
        ),
    ] = False,
    image_format: FormatOption = None,
) -> None:
    """Upload disk images as fixed VHDs into page blobs, or one into a new managed disk.

    Images may be raw, qcow2, VMDK, VHDX, VHD or VDI files (backing chains included) or
    NBD exports. A page blob holds at most 8 TiB, a managed disk 32 TiB (an OS disk 4 TiB,
    over 2 TiB with generation V2).

    Zeros are not sent, and an interrupted upload continues when run again. With --to-disk,
    DISK_ID is the new disk's resource id:
    /subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/disks/NAME
    """
    with reporting(ctx):
        sources = images or []
        pairs = [parse_pair(item) for item in sources]
        bulk = manifest is not None or any(pair is not None for pair in pairs)
        if bulk:
            if to is not None or to_disk is not None:
                raise typer.BadParameter("IMAGE=URL pairs and --manifest take no --to or --to-disk")
            if any(pair is None for pair in pairs):
                raise typer.BadParameter("give every image as IMAGE=URL when giving pairs")
        else:
            if (to is None) == (to_disk is None):
                raise typer.BadParameter("give exactly one of --to URL and --to-disk DISK_ID")
            if len(sources) != 1:
                raise typer.BadParameter(
                    "give one IMAGE with --to or --to-disk (several: IMAGE=URL pairs)"
                )
        if to_disk is None and location is not None:
            raise typer.BadParameter("--location goes with --to-disk")
        managed = None
        if to_disk is not None:
            managed = managed_disk_target(to_disk, location, os_type, generation, sku)
        config = TransferConfig(
            concurrency=concurrency,
            chunk_size=chunk_size,
            checksum=checksum,
            max_bandwidth=max_bandwidth,
        )
        # The environment is read here, not in the jobs: the journals' default folder too.
        journals = journal_dir if journal_dir is not None else default_journal_dir(os.environ)
        resume = ResumeOptions(directory=journals, restart=restart)
        proxy = proxy_settings(ctx)
        target = BlobTarget(connection_string, overwrite or restart, existing, proxy=proxy)
        if bulk:
            entries = [entry for entry in pairs if entry is not None]
            if manifest is not None:
                entries.extend(read_manifest(manifest))
            if not entries:
                raise typer.BadParameter("the manifest lists no disks")
            code = _upload_bulk(entries, target, config, resume, verify, as_json, image_format)
            raise typer.Exit(code)
        image = sources[0]
        checked: VerifyResult | None = None
        with TransferProgress(None if as_json else Console(stderr=True)) as progress:
            if managed is not None:
                settings = replace(ArmSettings.from_env(os.environ), proxy=proxy)
                disk_result = upload_to_disk(
                    image, managed, settings, config, resume, progress, as_json, image_format
                )
                result = disk_result.transfer
            else:
                assert to is not None
                disk_result = None
                result, checked = run(
                    upload_to_page_blob(
                        image,
                        to,
                        target,
                        config=config,
                        on_progress=progress,
                        resume=resume,
                        verify=verify,
                        image_format=image_format,
                    )
                )
    if as_json:
        data = result.to_json() if disk_result is None else disk_result.to_json()
        data["url"] = redact_url(str(data["url"]))
        if checked is not None:
            data["verify"] = checked.to_json()
        print_json(data)
    else:
        print(summary_line(result))
        if checked is not None and checked.identical:
            print(verify_line(checked))
        if disk_result is not None:
            print(f"managed disk {disk_result.disk_id}: {disk_result.disk_state}")
    if checked is not None and not checked.identical:
        error_line(verify_line(checked))
        raise typer.Exit(1)


def _upload_bulk(
    entries: list[ManifestEntry],
    target: BlobTarget,
    config: TransferConfig,
    resume: ResumeOptions,
    verify: bool,
    as_json: bool,
    image_format: str | None,
) -> int:
    """Upload many disks under one budget; report each disk and the total; the exit code."""
    labels = [entry.label for entry in entries]
    with BulkProgress(None if as_json else Console(stderr=True), labels) as progress:
        outcomes = run(
            upload_entries(
                entries,
                target,
                config=config,
                resume=resume,
                verify=verify,
                observer=progress,
                image_format=image_format,
            )
        )
    for outcome in outcomes:
        if outcome.error is not None:
            error_line(f"{outcome.job.label}: {outcome.error}")
        elif outcome.verify is not None and not outcome.verify.identical:
            error_line(f"{outcome.job.label}: {verify_line(outcome.verify)}")
    if as_json:
        print_json(_bulk_json(outcomes))
    else:
        for outcome in outcomes:
            if outcome.result is not None:
                print(f"{outcome.job.label}: {summary_line(outcome.result)}")
                if outcome.verify is not None and outcome.verify.identical:
                    print(f"{outcome.job.label}: {verify_line(outcome.verify)}")
        print(bulk_summary_line(outcomes, progress.seconds))
    codes = [outcome.exit_code for outcome in outcomes]
    return max(codes) if codes else 0


def _bulk_json(outcomes: list[DiskOutcome]) -> dict[str, Any]:
    disks = []
    for outcome in outcomes:
        data: dict[str, Any] = {
            "name": outcome.job.label,
            "image": str(outcome.job.source),
            "ok": outcome.ok,
            "exit_code": outcome.exit_code,
        }
        if outcome.result is not None:
            data.update(outcome.result.to_json())
            data["url"] = redact_url(str(data["url"]))
        if outcome.verify is not None:
            data["verify"] = outcome.verify.to_json()
        if outcome.error is not None:
            data["error"] = redact_text(one_line(str(outcome.error)))
        disks.append(data)
    results = [o.result.stats for o in outcomes if o.result is not None]
    total = {
        "disks": len(outcomes),
        "failed": sum(1 for o in outcomes if not o.ok),
        "bytes_uploaded": sum(s.bytes_uploaded for s in results),
        "bytes_skipped": sum(s.bytes_skipped for s in results),
        "bytes_resumed": sum(s.bytes_resumed for s in results),
        "disk_bytes": sum(s.disk_size for s in results),
    }
    return {"disks": disks, "total": total}
