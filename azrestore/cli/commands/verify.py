"""``azrestore verify``: read a page blob back and compare it with its disk image."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from ...jobs.verify import verify_page_blob
from ...transfer.config import TransferConfig
from ..progress import VerifyProgressBar, verify_line
from ..text import error_line, print_json
from .common import (
    ConnectionStringOption,
    FormatOption,
    ImageArgument,
    JsonOption,
    proxy_settings,
    reporting,
    run,
)

#: Reads in flight by default (reads are not governed by the upload's controller).
VERIFY_CONCURRENCY = 16


def verify(
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
    ] = VERIFY_CONCURRENCY,
    connection_string: ConnectionStringOption = None,
    image_format: FormatOption = None,
) -> None:
    """Read a page blob back and compare it with the disk image it was uploaded from.

    Exit 0 when they are identical, 1 when differences are found.
    """
    with reporting(ctx):
        config = TransferConfig(concurrency=concurrency)
        with VerifyProgressBar(None if as_json else Console(stderr=True)) as progress:
            checked = run(
                verify_page_blob(
                    image,
                    to,
                    config=config,
                    connection_string=connection_string,
                    on_progress=progress,
                    proxy=proxy_settings(ctx),
                    image_format=image_format,
                )
            )
    if as_json:
        print_json(checked.to_json())
    elif checked.identical:
        print(verify_line(checked))
    if not checked.identical:
        error_line(verify_line(checked))
        raise typer.Exit(1)
