"""``azrestore inspect``: what a disk image holds and the VHD it would become, as a table
or JSON."""

from __future__ import annotations

from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ...formats.sizes import format_size
from ...sources.report import inspect_image
from ..text import print_json
from .common import FormatOption, ImageArgument, JsonOption, reporting, run


def inspect(
    ctx: typer.Context,
    image: ImageArgument,
    as_json: JsonOption = False,
    image_format: FormatOption = None,
) -> None:
    """Show what a disk image holds (its format and backing chain, allocation, partitions)
    and the VHD it would become."""
    with reporting(ctx):
        report = run(inspect_image(image, image_format=image_format)).to_json()
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
    table.add_row("format", _text(report["format"]))
    chain: list[dict[str, Any]] = report.get("backing_chain") or []
    for link in chain[1:]:
        table.add_row("backing file", _text(f"{link['path']} ({link['format']})"))
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
