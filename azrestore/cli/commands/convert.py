"""``azrestore convert``: write a raw disk image as a fixed VHD file. Its plain scripted
form also runs without typer, in :mod:`azrestore.cli.entry`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ...transfer.convert import ConvertResult, convert_to_vhd
from ..progress import CopyProgress, summary_line
from ..text import print_json
from .common import ImageArgument, JsonOption, reporting, run


def convert(
    ctx: typer.Context,
    image: ImageArgument,
    output: Annotated[
        Path, typer.Argument(help="The fixed VHD file to write.", show_default=False)
    ],
    as_json: JsonOption = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the output if it exists.")
    ] = False,
) -> None:
    """Write a raw disk image as a fixed VHD file (holes stay holes)."""
    with reporting(ctx), CopyProgress(None if as_json else Console(stderr=True)) as progress:
        result: ConvertResult = run(
            convert_to_vhd(image, output, overwrite=overwrite, on_progress=progress)
        )
    if as_json:
        print_json(result.to_json())
    else:
        print(summary_line(result))
