"""``azrestore convert``: write a disk image (of any format) as a fixed VHD file. Its
plain scripted form on a raw image also runs without typer, in :mod:`azrestore.cli.entry`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ...transfer.convert import ConvertResult, convert_to_vhd
from ..progress import CopyProgress, summary_line
from ..text import print_json
from .common import FormatOption, ImageArgument, JsonOption, reporting, run


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
    image_format: FormatOption = None,
) -> None:
    """Write a disk image as a fixed VHD file (holes, and what the image does not hold,
    stay holes). At most 32 TiB, the largest disk Azure takes."""
    with reporting(ctx), CopyProgress(None if as_json else Console(stderr=True)) as progress:
        result: ConvertResult = run(
            convert_to_vhd(
                image,
                output,
                overwrite=overwrite,
                on_progress=progress,
                image_format=image_format,
            )
        )
    if as_json:
        print_json(result.to_json())
    else:
        print(summary_line(result))
