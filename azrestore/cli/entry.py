"""The ``azrestore`` console script: a quick start for scripted ``convert``, else the full
command line (:mod:`azrestore.cli.main`).

The full command line (typer, rich, pydantic) takes about 0.3 s to start, longer than the
conversion of a sparse image takes (0.07 s for 64 GiB holding 256 MiB). A plain
``azrestore [--debug] convert IMAGE OUT [--json] [--overwrite]`` with no progress bar to
draw (``--json``, or stderr not a terminal) runs here instead, with the same output, error
lines and exit codes. Anything else - help, a usage error, a terminal to draw on - goes to
the full command line, which checks and reports it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

#: The options of ``convert`` that the quick start understands; a test keeps this in step
#: with the full command's options.
CONVERT_FLAGS = frozenset({"--json", "--overwrite"})


@dataclass(frozen=True, slots=True)
class QuickConvert:
    image: str
    output: str
    as_json: bool
    overwrite: bool
    debug: bool


def parse_quick_convert(argv: Sequence[str], *, stderr_is_terminal: bool) -> QuickConvert | None:
    """The conversion ``argv`` asks for, or None when the full command line should run."""
    args = list(argv)
    debug = bool(args) and args[0] == "--debug"
    if debug:
        args.pop(0)
    if not args or args[0] != "convert":
        return None
    flags = [arg for arg in args[1:] if arg.startswith("-")]
    paths = [arg for arg in args[1:] if not arg.startswith("-")]
    if len(paths) != 2 or not set(flags) <= CONVERT_FLAGS or len(set(flags)) != len(flags):
        return None
    as_json = "--json" in flags
    if stderr_is_terminal and not as_json:
        return None  # a live progress bar to draw: rich's job
    return QuickConvert(paths[0], paths[1], as_json, "--overwrite" in flags, debug)


def run_quick_convert(request: QuickConvert) -> int:
    """Convert as ``azrestore convert`` does; returns the exit code."""
    from ..errors import AzRestoreError
    from ..redact import redact_text
    from ..transfer.convert import convert_file
    from .text import convert_summary, error_line, print_json

    def fail(code: int, message: str) -> int:
        if request.debug:
            import traceback

            sys.stderr.write(redact_text(traceback.format_exc()))
        error_line(message)
        return code

    try:
        # Blocking, on threads: no event loop to start for one local copy.
        result = convert_file(request.image, request.output, overwrite=request.overwrite)
    except KeyboardInterrupt:
        return fail(130, "interrupted")
    except AzRestoreError as exc:
        return fail(exc.exit_code, str(exc) or type(exc).__name__)
    except Exception as exc:
        return fail(1, f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)")
    if request.as_json:
        print_json(result.to_json())
    else:
        print(convert_summary(result))
    return 0


def main() -> None:
    """Console-script entry point."""
    request = parse_quick_convert(sys.argv[1:], stderr_is_terminal=os.isatty(2))
    if request is None:
        from .main import main as full_main

        full_main()
    else:
        sys.exit(run_quick_convert(request))
