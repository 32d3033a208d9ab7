"""The ``azrestore`` command line: inspect, convert and upload disk images.

Commands stay thin: parse options, build a config, run one coroutine on uvloop, render.
Every error ends as one line, ``azrestore: error: <message>`` on stderr, and an exit code
(2 bad input or usage, 1 failed transfer, 130 interrupted); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
import traceback
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TypeVar

import anyio
import typer
import uvloop
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from ..azure.resource_id import ResourceId
from ..errors import AzRestoreError
from ..formats.sizes import MiB, format_size, parse_size
from ..redact import redact_text, redact_url
from ..sources.raw import open_raw_image
from ..sources.report import inspect_image
from ..transfer.config import Checksum, TransferConfig
from ..transfer.convert import ConvertResult, convert_to_vhd
from ..transfer.progress import ProgressCallback, TransferResult
from ..transfer.resume import ResumeOptions
from .environment import CONNECTION_STRING_ENV
from .manifest import ManifestEntry, parse_pair, read_manifest
from .progress import (
    BulkProgress,
    CopyProgress,
    TransferProgress,
    VerifyProgressBar,
    bulk_summary_line,
    summary_line,
    verify_line,
)
from .text import PROG, error_line, one_line, print_json

if TYPE_CHECKING:
    from ..azure.manageddisk import ManagedDiskResult
    from ..transfer.scheduler import DiskOutcome
    from ..transfer.verify import VerifyResult

T = TypeVar("T")
#: The library's defaults, shown as the options' defaults.
_DEFAULTS = TransferConfig()


class _Group(TyperGroup):
    """Reports usage errors as one line instead of click's usage block."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.TyperException as exc:  # click's UsageError and friends
            if type(exc).__name__ == "NoArgsIsHelpError":
                # typer has printed the help already; click's message is what is left.
                if help_text := exc.format_message().strip():
                    print(help_text, file=sys.stderr)
            else:
                context = getattr(exc, "ctx", None)
                where = context.command_path if context is not None else PROG
                error_line(f"{exc.format_message()} (see '{where} --help')")
            sys.exit(exc.exit_code)
        except (KeyboardInterrupt, typer.Abort):
            error_line("interrupted")
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_Group,
    name=PROG,
    help="Convert raw disk images to fixed VHDs and upload them to Azure page blobs.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@dataclass(frozen=True, slots=True)
class _Options:
    debug: bool = False


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
    _show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    ctx.obj = _Options(debug=debug)


# -- error reporting ----------------------------------------------------------------------


def _fail(ctx: typer.Context, code: int, message: str) -> NoReturn:
    options = ctx.obj if isinstance(ctx.obj, _Options) else _Options()
    if options.debug:
        sys.stderr.write(redact_text(traceback.format_exc()))
    error_line(message)
    raise typer.Exit(code)


@contextmanager
def _reporting(ctx: typer.Context) -> Iterator[None]:
    """Turn any error into one line on stderr and the matching exit code."""
    try:
        yield
    except (typer.Exit, typer.TyperException):
        raise
    except KeyboardInterrupt:
        _fail(ctx, 130, "interrupted")
    except AzRestoreError as exc:
        _fail(ctx, exc.exit_code, str(exc) or type(exc).__name__)
    except Exception as exc:
        _fail(ctx, 1, f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion on uvloop."""
    result: T = uvloop.run(coroutine)
    return result


def _size(value: str | int) -> int:
    """A typer parser for sizes and rates such as ``4MiB``, ``200MB`` or ``1.5GiB``."""
    try:
        return parse_size(str(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


# -- inspect ------------------------------------------------------------------------------

ImageArgument = Annotated[
    Path,
    typer.Argument(help="A raw disk image (regular file or block device).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


@app.command()
def inspect(ctx: typer.Context, image: ImageArgument, as_json: JsonOption = False) -> None:
    """Show what a disk image holds and the VHD it would become."""
    with _reporting(ctx):
        report = _run(inspect_image(image)).to_json()
    if as_json:
        print_json(report)
    else:
        console = Console(highlight=False)
        console.print(_report_table(report))
        if report.get("partitions"):
            console.print(_partition_table(report["partitions"]))


def _bytes(value: int) -> Text:
    return Text(f"{format_size(value)} ({value:,} bytes)")


def _text(value: object) -> Text:
    return Text("-" if value is None or value == "" else str(value))


def _report_table(report: dict[str, Any]) -> Table:
    """The human view of ``ImageReport.to_json()``."""
    table = Table(box=box.SIMPLE, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    disk_size = int(report["disk_size"])
    allocated = int(report["allocated_bytes"])
    share = f"{100 * allocated / disk_size:.1f}%" if disk_size else "-"
    partitions: list[dict[str, Any]] = report.get("partitions") or []
    vhd = report["vhd"]
    geometry = vhd["geometry"]
    table.add_row("image", _text(report["path"]))
    table.add_row("disk size", _bytes(disk_size))
    table.add_row("allocated", _text(f"{format_size(allocated)} ({share} of the disk)"))
    scheme = str(report["partition_scheme"])
    table.add_row(
        "partitions",
        _text(scheme if scheme == "none" else f"{scheme.upper()}, {len(partitions)} partition(s)"),
    )
    table.add_row("firmware", _text(report["firmware"]))
    table.add_row("OS family", _text(report["os_family"]))
    table.add_row("Azure generation", _text(report["generation"]))
    table.add_row("VHD virtual size", _bytes(int(vhd["virtual_size"])))
    table.add_row("VHD blob size", _bytes(int(vhd["blob_size"])))
    table.add_row(
        "VHD geometry",
        _text(
            f"{geometry['cylinders']} cylinders, {geometry['heads']} heads,"
            f" {geometry['sectors_per_track']} sectors/track"
        ),
    )
    for warning in report.get("warnings") or []:
        table.add_row("warning", Text(str(warning), style="yellow"))
    return table


def _partition_table(partitions: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    for title in ("#", "start", "size", "type", "name", "file system"):
        table.add_column(title, justify="right" if title in ("#", "start", "size") else "left")
    for partition in partitions:
        start, size = partition.get("start"), partition.get("size")
        table.add_row(
            _text(partition.get("number")),
            _text(format_size(start) if isinstance(start, int) else start),
            _text(format_size(size) if isinstance(size, int) else size),
            _text(partition.get("type_name") or partition.get("type")),
            _text(partition.get("name")),
            _text(partition.get("filesystem")),
        )
    return table


# -- convert ------------------------------------------------------------------------------

ConnectionStringOption = Annotated[
    str | None,
    typer.Option(
        "--connection-string",
        help="Storage connection string with the account key"
        " (default: AZURE_STORAGE_CONNECTION_STRING).",
        envvar=CONNECTION_STRING_ENV,
        show_envvar=False,
        show_default=False,
    ),
]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace the output if it exists.")
]


@app.command()
def convert(
    ctx: typer.Context,
    image: ImageArgument,
    output: Annotated[
        Path, typer.Argument(help="The fixed VHD file to write.", show_default=False)
    ],
    as_json: JsonOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Write a raw disk image as a fixed VHD file (holes stay holes)."""
    with _reporting(ctx), CopyProgress(None if as_json else Console(stderr=True)) as progress:
        result: ConvertResult = _run(
            convert_to_vhd(image, output, overwrite=overwrite, on_progress=progress)
        )
    if as_json:
        print_json(result.to_json())
    else:
        print(summary_line(result))


# -- upload -------------------------------------------------------------------------------


@app.command()
def upload(
    ctx: typer.Context,
    images: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="IMAGE | IMAGE=URL ...",
            help="A raw disk image (regular file or block device) with --to or --to-disk;"
            " or one or more IMAGE=URL pairs, uploaded together under one budget.",
            show_default=False,
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="The page blob URL: with a SAS token, or with an account key from"
            " --connection-string / AZURE_STORAGE_CONNECTION_STRING, or else Azure AD.",
            show_default=False,
        ),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            metavar="FILE",
            help="Disks to upload: a JSON or YAML list of {image, to[, name]}, or lines"
            " 'IMAGE URL'. Images are relative to the file's directory.",
            show_default=False,
        ),
    ] = None,
    to_disk: Annotated[
        str | None,
        typer.Option(
            "--to-disk",
            metavar="DISK_ID",
            help="Upload into a new managed disk instead (direct upload, like Add-AzVhd):"
            " /subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/disks/NAME.",
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
        int, typer.Option(help="Requests in flight (and chunk buffers held) at once.")
    ] = _DEFAULTS.concurrency,
    chunk_size: Annotated[
        int,
        typer.Option(
            parser=_size,
            metavar="SIZE",
            show_default=False,
            help="Bytes read per chunk, also the largest request (at most 4MiB)"
            f" [default: {_DEFAULTS.chunk_size // MiB}MiB].",
        ),
    ] = _DEFAULTS.chunk_size,
    checksum: Annotated[
        Checksum, typer.Option(case_sensitive=False, help="Integrity check sent with each page.")
    ] = _DEFAULTS.checksum,
    max_bandwidth: Annotated[
        int | None,
        typer.Option(
            parser=_size,
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
            help="Where resume journals live [default: $AZRESTORE_STATE_DIR/journals,"
            " $XDG_STATE_HOME/azrestore/journals or ~/.local/state/azrestore/journals].",
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
) -> None:
    """Upload raw disk images into page blobs (or one into a new managed disk) as fixed
    VHDs; zeros are not sent. An interrupted upload continues when run again."""
    with _reporting(ctx):
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
            managed = _managed_options(to_disk, location, os_type, generation, sku)
        config = TransferConfig(
            concurrency=concurrency,
            chunk_size=chunk_size,
            checksum=checksum,
            max_bandwidth=max_bandwidth,
        )
        resume = ResumeOptions(directory=journal_dir, restart=restart)
        blob = _BlobOptions(connection_string, overwrite or restart, existing)
        if bulk:
            entries = [entry for entry in pairs if entry is not None]
            if manifest is not None:
                entries.extend(read_manifest(manifest))
            if not entries:
                raise typer.BadParameter("the manifest lists no disks")
            code = _upload_bulk(entries, config, blob, resume, verify, as_json)
            raise typer.Exit(code)
        image = Path(sources[0])
        checked: VerifyResult | None = None
        with TransferProgress(None if as_json else Console(stderr=True)) as progress:
            if managed is not None:
                disk_result = _run(_upload_managed(image, managed, config, progress))
                result = disk_result.transfer
            else:
                assert to is not None
                disk_result = None
                result, checked = _run(
                    _upload(
                        image,
                        to,
                        config=config,
                        connection_string=connection_string,
                        overwrite=blob.overwrite,
                        existing=existing,
                        on_progress=progress,
                        resume=resume,
                        verify=verify,
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


@dataclass(frozen=True)
class _BlobOptions:
    connection_string: str | None
    overwrite: bool
    existing: bool


@dataclass(frozen=True)
class _ManagedOptions:
    disk_id: str
    location: str
    os_type: Literal["Linux", "Windows", "auto", "none"]
    generation: Literal["V1", "V2", "auto"]
    sku: str


def _managed_options(
    disk_id: str, location: str | None, os_type: str, generation: str, sku: str
) -> _ManagedOptions:
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
    return _ManagedOptions(
        disk_id,
        location,
        os_types[os_type.lower()],  # type: ignore[arg-type]
        generations[generation.lower()],  # type: ignore[arg-type]
        sku,
    )


async def _upload_managed(
    image_path: Path,
    options: _ManagedOptions,
    config: TransferConfig,
    on_progress: ProgressCallback,
) -> ManagedDiskResult:
    # Imported here: the Resource Manager SDKs cost every other command ~50 MiB and ~0.5 s.
    from ..azure.manageddisk import create_disk_and_upload

    with await open_raw_image(image_path) as image:
        return await create_disk_and_upload(
            image,
            options.disk_id,
            location=options.location,
            config=config,
            os_type=options.os_type,
            hyper_v_generation=options.generation,
            sku=options.sku,
            on_progress=on_progress,
        )


async def _upload(
    image_path: Path,
    url: str,
    *,
    config: TransferConfig,
    connection_string: str | None,
    overwrite: bool,
    existing: bool,
    on_progress: ProgressCallback,
    resume: ResumeOptions | None = None,
    verify: bool = False,
) -> tuple[TransferResult, VerifyResult | None]:
    # Heavy imports (aiohttp, numpy) wait until a command needs them: light commands
    # such as convert and inspect start faster.
    from ..azure.pageblob import open_page_blob
    from ..transfer.pipeline import upload_disk
    from ..transfer.verify import verify_disk

    # The image is checked before anything is created in Azure.
    with await open_raw_image(image_path) as image:
        async with open_page_blob(
            url,
            connection_string=connection_string,
            checksum=config.checksum,
            overwrite=overwrite,
            existing=existing,
            concurrency=config.concurrency,
        ) as sink:
            result = await upload_disk(
                image, sink, config=config, on_progress=on_progress, resume=resume
            )
            checked = await verify_disk(image, sink, config=config) if verify else None
            return result, checked


def _upload_bulk(
    entries: list[ManifestEntry],
    config: TransferConfig,
    blob: _BlobOptions,
    resume: ResumeOptions,
    verify: bool,
    as_json: bool,
) -> int:
    """Upload many disks under one budget; report each disk and the total; the exit code."""
    labels = [entry.label for entry in entries]
    with BulkProgress(None if as_json else Console(stderr=True), labels) as progress:
        outcomes = _run(_bulk(entries, config, blob, resume, verify, progress))
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


async def _bulk(
    entries: list[ManifestEntry],
    config: TransferConfig,
    blob: _BlobOptions,
    resume: ResumeOptions,
    verify: bool,
    progress: BulkProgress,
) -> list[DiskOutcome]:
    from ..azure.pageblob import open_blob_session, open_page_blob
    from ..transfer.scheduler import UploadJob, upload_many

    async with open_blob_session(config.concurrency) as session:
        jobs = [
            UploadJob(
                source=entry.image,
                sink=partial(
                    open_page_blob,
                    entry.url,
                    connection_string=blob.connection_string,
                    checksum=config.checksum,
                    overwrite=blob.overwrite,
                    existing=blob.existing,
                    session=session,
                ),
                name=entry.label,
                on_progress=progress.callback(index),
                on_verify_progress=progress.verify_callback(index),
            )
            for index, entry in enumerate(entries)
        ]
        return await upload_many(jobs, config=config, resume=resume, verify=verify)


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


# -- verify -------------------------------------------------------------------------------


@app.command(name="verify")
def verify_command(
    ctx: typer.Context,
    image: ImageArgument,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The page blob URL (SAS, account key or Azure AD, as for upload).",
            show_default=False,
        ),
    ],
    as_json: JsonOption = False,
    concurrency: Annotated[
        int, typer.Option(help="Reads in flight (and chunk buffers held) at once.")
    ] = _DEFAULTS.concurrency,
    connection_string: ConnectionStringOption = None,
) -> None:
    """Read a page blob back and compare it with the raw image it was uploaded from
    (exit 0 identical, 1 differences found)."""
    with _reporting(ctx):
        config = TransferConfig(concurrency=concurrency)
        with VerifyProgressBar(None if as_json else Console(stderr=True)) as progress:
            checked = _run(_verify(image, to, config, connection_string, progress))
    if as_json:
        print_json(checked.to_json())
    elif checked.identical:
        print(verify_line(checked))
    if not checked.identical:
        error_line(verify_line(checked))
        raise typer.Exit(1)


async def _verify(
    image_path: Path,
    url: str,
    config: TransferConfig,
    connection_string: str | None,
    on_progress: VerifyProgressBar,
) -> VerifyResult:
    from ..azure.pageblob import open_page_blob
    from ..transfer.verify import verify_disk

    with await open_raw_image(image_path) as image:
        async with open_page_blob(
            url,
            connection_string=connection_string,
            existing=True,
            concurrency=config.concurrency,
        ) as sink:
            return await verify_disk(image, sink, config=config, on_progress=on_progress)


# -- emulator -----------------------------------------------------------------------------


@app.command()
def emulator(
    ctx: typer.Context,
    as_json: JsonOption = False,
    time_factor: Annotated[
        float,
        typer.Option(
            help="Multiplies every simulated Azure duration (0.01 for tests, 1 for real pace)."
        ),
    ] = 1.0,
) -> None:
    """Run a local Azure until Ctrl-C or SIGTERM: Azurite behind the strict storage gateway,
    and the Resource Manager simulator. Prints where it is and the environment to use it."""
    with _reporting(ctx):
        if time_factor <= 0:
            raise typer.BadParameter("--time-factor must be positive")
        _run(_serve_emulator(as_json, time_factor))


async def _serve_emulator(as_json: bool, time_factor: float) -> None:
    from ..emulator import Emulator

    async with Emulator(time_factor=time_factor) as local_azure:
        info = local_azure.info()
        if as_json:
            print(json.dumps(info), flush=True)
        else:
            print(f"Resource Manager: {info['arm_endpoint']}")
            print(f"Blob storage:     {info['blob_endpoint']}")
            print(f"CA bundle:        {info['ca_bundle']}")
            print("Point azrestore at it with:")
            for name, value in info["env"].items():
                print(f"  export {name}={shlex.quote(str(value))}")
            print("Running until Ctrl-C.", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break


# -- restore and plan -----------------------------------------------------------------

plan_app = typer.Typer(
    cls=_Group, no_args_is_help=True, help="Restore plans: an example to start from."
)
app.add_typer(plan_app, name="plan")


@plan_app.command("example")
def plan_example() -> None:
    """Print a commented example restore plan (YAML)."""
    from ..restore.plan import example_plan

    print(example_plan(), end="")


@app.command()
def restore(
    ctx: typer.Context,
    plan: Annotated[Path, typer.Argument(help="The restore plan (YAML).", show_default=False)],
    use_emulator: Annotated[
        bool,
        typer.Option(
            "--emulator",
            help="Start a fresh local emulator, create in it the subnet, proxy and helpers"
            " the plan names, and restore into it (no subscription needed).",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Check the plan and the images and print the steps; touch nothing."
        ),
    ] = False,
    as_json: JsonOption = False,
    time_factor: Annotated[
        float,
        typer.Option(help="With --emulator: multiplies every simulated Azure duration."),
    ] = 0.05,
) -> None:
    """Restore the VMs of a plan into Azure: upload and prepare their disks, register the
    VMs and power them on. Exit 0 when every VM succeeded, 1 when any failed, 2 for a bad
    plan."""
    from .restore import (
        RestoreView,
        dry_run_steps,
        report_json,
        report_table,
        resolve_plan_file,
        run_restore,
    )

    with _reporting(ctx):
        if time_factor <= 0:
            raise typer.BadParameter("--time-factor must be positive")
        if dry_run:
            resolved = _run(resolve_plan_file(plan, emulator=use_emulator))
            if as_json:
                print_json(
                    {"dry_run": True, **resolved.to_json(), "steps": dry_run_steps(resolved)}
                )
            else:
                for warning in resolved.warnings:
                    print(f"warning: {warning}")
                print("\n".join(dry_run_steps(resolved)))
            return
        with RestoreView(None if as_json else Console(stderr=True)) as view:
            report = _run(
                run_restore(
                    plan,
                    emulator=use_emulator,
                    time_factor=time_factor,
                    config_override=None,
                    view=view,
                )
            )
    for failed in report.vms:
        if failed.status != "succeeded":
            error_line(f"{failed.name}: {failed.error}")
    if as_json:
        print(report_json(report))
    else:
        Console().print(report_table(report))
        for resource in report.left_in_azure:
            print(f"left in Azure: {resource}")
    raise typer.Exit(0 if report.succeeded else 1)


def main() -> None:
    """Console-script entry point."""
    app(prog_name=PROG)


if __name__ == "__main__":
    main()
