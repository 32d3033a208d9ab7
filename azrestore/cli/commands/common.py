"""What every command shares: the argument and option types, the size parser, running a
coroutine on uvloop, and :func:`reporting`, which hands any error to the one error edge
(:mod:`azrestore.cli.edge`)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from ...formats.sizes import parse_size
from ...sources.base import FORMATS
from ...transfer.config import TransferConfig
from .. import environment
from ..edge import report_error
from ..environment import CONNECTION_STRING_ENV
from ..loop import run as run

if TYPE_CHECKING:
    from ...azure.proxy import ProxySettings


#: The library's defaults, shown as the options' defaults.
DEFAULTS = TransferConfig()


@dataclass(frozen=True, slots=True)
class GlobalOptions:
    """The options given before the command (``azrestore --debug ...``)."""

    debug: bool = False
    #: ``--proxy-url``: the forward proxy for every request to Azure
    proxy_url: str | None = None


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The options given before the command (defaults when none were parsed)."""
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, GlobalOptions) else GlobalOptions()


def proxy_settings(ctx: typer.Context) -> ProxySettings | None:
    """The forward proxies of this run: ``--proxy-url``, else the environment's
    HTTPS_PROXY/HTTP_PROXY, with NO_PROXY's exceptions (see cli/environment.py)."""
    return environment.proxy_settings(os.environ, global_options(ctx).proxy_url)


@contextmanager
def reporting(ctx: typer.Context) -> Iterator[None]:
    """Turn any error into one line on stderr and the matching exit code."""
    try:
        yield
    except (typer.Exit, typer.TyperException):
        raise
    except (KeyboardInterrupt, Exception) as exc:
        raise typer.Exit(report_error(exc, debug=global_options(ctx).debug)) from None


def size_option(value: str | int) -> int:
    """A typer parser for sizes and rates such as ``4MiB``, ``200MB`` or ``1.5GiB``."""
    try:
        return parse_size(str(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def format_option(value: str | None) -> str | None:
    """A typer callback for ``--format``: one of the formats, or usage error (exit 2)."""
    if value is not None and value not in FORMATS:
        raise typer.BadParameter(f"{value!r} is not an image format (one of: {', '.join(FORMATS)})")
    return value


#: What an image argument takes, for help texts.
IMAGE_HELP = (
    "A disk image: a raw file or block device, a qcow2, VMDK, VHDX, VHD or VDI file"
    " (with its backing chain), or an NBD export (nbd://HOST[:PORT]/EXPORT,"
    " nbd+unix:///EXPORT?socket=PATH)."
)
ImageArgument = Annotated[str, typer.Argument(help=IMAGE_HELP, show_default=False)]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="FMT",
        callback=format_option,
        help="The image's format: raw, qcow2, vmdk, vhdx, vpc (VHD), vdi or nbd"
        " (default: found from the image's signature, or nbd for a URL).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
ConnectionStringOption = Annotated[
    str | None,
    typer.Option(
        "--connection-string",
        envvar=CONNECTION_STRING_ENV,
        show_envvar=False,
        help="Storage connection string with the account key"
        f" (default: the {CONNECTION_STRING_ENV} variable).",
        show_default=False,
    ),
]


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run as Ctrl-C does (the event loop's SIGINT handler cancels the
    upload), so that it still reports what it leaves in Azure."""

    def on_terminate(signum: int, frame: object) -> None:
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, on_terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
