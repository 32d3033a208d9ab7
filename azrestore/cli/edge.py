"""The command line's one error edge: an exception becomes one line on stderr and an exit
code (2 bad input or usage, 1 failed, 130 interrupted); ``--debug`` adds the traceback.

The full command line, its quick ``convert`` start and the demo all report errors here.
Imports nothing heavy (no typer, no rich): the quick start loads it.
"""

from __future__ import annotations

import sys

from ..errors import AzRestoreError
from .text import PROG, error_line

#: The exit code of an interrupted command (128 + SIGINT), as shells report it.
INTERRUPTED = 130


def exit_code_of(error: BaseException) -> int:
    """The exit code a command ends with when ``error`` stops it."""
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(error, AzRestoreError):
        return error.exit_code
    return 1


def error_message(error: BaseException) -> str:
    """What the error line says about ``error``."""
    if isinstance(error, KeyboardInterrupt):
        # A command may say what the interruption leaves behind (KeyboardInterrupt(text)).
        return f"interrupted: {error}" if str(error) else "interrupted"
    if isinstance(error, AzRestoreError):
        return str(error) or type(error).__name__
    return f"unexpected {type(error).__name__}: {error} (run with --debug for details)"


def report_error(error: BaseException, *, debug: bool = False, prog: str = PROG) -> int:
    """Print ``PROG: error: <message>`` for ``error`` (after its redacted traceback with
    ``debug``) and return the exit code to end with. Call it from an ``except`` block."""
    from ..redact import redact_text  # only on failure: redact loads re (start-up time)

    if debug:
        import traceback

        sys.stderr.write(redact_text(traceback.format_exc()))
    error_line(redact_text(error_message(error)), prog=prog)
    return exit_code_of(error)
