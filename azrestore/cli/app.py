"""The ``azrestore`` command line: the typer application and its commands.

Commands stay thin: parse options, call one job, render. Every error ends as one line,
``azrestore: error: <message>`` on stderr, and an exit code (2 bad input or usage, 1 failed
transfer, 130 interrupted); ``--debug`` adds the traceback. Errors raised by a command go
to :mod:`azrestore.cli.edge`; usage errors found by the parser are worded here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .commands.common import GlobalOptions
from .commands.convert import convert
from .commands.emulator import emulator
from .commands.inspect import inspect
from .commands.restore import plan_example, restore
from .commands.upload import upload
from .commands.verify import verify
from .edge import report_error
from .text import PROG, error_line


class OneLineUsageGroup(TyperGroup):
    """Reports usage errors as one line instead of click's usage block."""

    def invoke(self, ctx: Any) -> Any:
        # typer turns a KeyboardInterrupt that leaves a command into a silent exit 130:
        # a Ctrl-C outside a command's own error edge (its lazy imports, say) gets the
        # one error line too.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise typer.Exit(report_error(exc)) from None

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
            # click turns a Ctrl-C while it parses or prompts into Abort: the same thing.
            sys.exit(report_error(KeyboardInterrupt()))
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineUsageGroup,
    name=PROG,
    help="Convert disk images (raw, qcow2, VMDK, VHDX, VHD, VDI, NBD exports) to fixed VHDs"
    " and upload them to Azure page blobs and managed disks.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"{PROG} {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
    proxy_url: Annotated[
        str | None,
        typer.Option(
            "--proxy-url",
            metavar="URL",
            help="The HTTP forward proxy for every request to Azure,"
            " http://[user:password@]host:port (default: HTTPS_PROXY / HTTP_PROXY;"
            " hosts in NO_PROXY are reached directly).",
            show_default=False,
        ),
    ] = None,
    _show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    ctx.obj = GlobalOptions(debug=debug, proxy_url=proxy_url)


app.command()(inspect)
app.command()(convert)
app.command()(upload)
app.command()(verify)
app.command()(emulator)

plan_app = typer.Typer(
    cls=OneLineUsageGroup,
    no_args_is_help=True,
    help="Restore plans: an example to start from.",
    rich_markup_mode="markdown",
)
plan_app.command("example")(plan_example)
app.add_typer(plan_app, name="plan")

app.command()(restore)


def main() -> None:
    """Console-script entry point."""
    app(prog_name=PROG)


if __name__ == "__main__":
    main()
