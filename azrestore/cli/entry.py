"""The ``azrestore`` console script: a quick start for scripted ``convert`` (and, in
:mod:`.quickupload`, for scripted ``upload``), else the full command line
(:mod:`azrestore.cli.app`).

The full command line (typer, rich, pydantic) takes longer to start than the conversion
of a sparse image takes (figures in docs/benchmarks.md). A plain
``azrestore [--debug] convert IMAGE OUT [--json] [--overwrite]`` of an image file with no
progress bar to draw (``--json``, or stderr not a terminal) runs here instead, with the
same output, error lines and exit codes: a raw image with the fewest imports, an image in
a container format opened as the full command line opens it
(:func:`~azrestore.sources.open.open_source_blocking`, in this thread: no event loop).
Anything else - help, a usage error, a terminal to draw on, ``--format``, an NBD URL -
goes to the full command line, which checks and reports it.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Sequence

#: The options of ``convert`` that the quick start understands; a test keeps this in step
#: with the full command's options.
CONVERT_FLAGS = frozenset({"--json", "--overwrite"})
#: The options of ``convert`` that only the full command line takes.
FULL_CONVERT_FLAGS = frozenset({"--format"})
#: Bytes of an image's start that name its container format (see formats/containers.py).
_HEAD = 64 * 1024


class QuickConvert:
    """A conversion for the quick start to run. A plain class: importing dataclasses
    (inspect, ast) would add a noticeable share to the quick start's time."""

    __slots__ = ("as_json", "debug", "image", "output", "overwrite")

    def __init__(
        self, image: str, output: str, as_json: bool, overwrite: bool, debug: bool
    ) -> None:
        self.image = image
        self.output = output
        self.as_json = as_json
        self.overwrite = overwrite
        self.debug = debug

    def _fields(self) -> tuple[str, str, bool, bool, bool]:
        return self.image, self.output, self.as_json, self.overwrite, self.debug

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QuickConvert) and self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return f"QuickConvert{self._fields()!r}"


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


def quick_can_read(image: str) -> bool:
    """Whether the quick start can convert ``image`` itself: not an NBD URL."""
    return "://" not in image


def is_raw(image: str) -> bool:
    """Whether ``image`` shows no container format's signature in its first 64 KiB or last
    512 bytes, so that the raw path (fewest imports) converts it. (Anything it cannot open
    is left to that path: it reports missing files and the like as the full command line
    does.)"""
    import stat

    try:
        mode = os.stat(image).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
            return True  # refused by the quick start, worded as the full command line does
        fd = os.open(image, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return True
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        head = os.pread(fd, _HEAD, 0)
        tail = os.pread(fd, 512, max(0, size - 512))
    except OSError:
        return True
    finally:
        os.close(fd)
    from ..formats.containers import detect_container

    return detect_container(head, tail) is None


def run_quick_convert(request: QuickConvert) -> int:
    """Convert as ``azrestore convert`` does; returns the exit code. Errors are reported
    by the same edge as the full command line's (:func:`azrestore.cli.edge.report_error`)."""
    from ..transfer.convert import convert_file
    from .edge import report_error
    from .text import convert_summary, print_json

    try:
        # Blocking, on threads: no event loop to start for one local copy.
        if is_raw(request.image):
            result = convert_file(request.image, request.output, overwrite=request.overwrite)
        else:
            os.environ.setdefault(*BLAS_THREADS)
            from ..sources.open import open_source_blocking

            with open_source_blocking(request.image) as source:
                result = convert_file(source, request.output, overwrite=request.overwrite)
    except (KeyboardInterrupt, Exception) as exc:
        return report_error(exc, debug=request.debug)
    if request.as_json:
        print_json(result.to_json())
    else:
        print(convert_summary(result))
    return 0


#: numpy's OpenBLAS starts a thread per core on import, and the thread spins while it
#: waits for work azrestore never gives it (numpy only tests buffers for zeros here):
#: 0.11 CPU s per upload of 1 MiB, CPU that Azurite, on the same two cores, could use.
#: The user's own setting wins.
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    """Console-script entry point."""
    request = parse_quick_convert(sys.argv[1:], stderr_is_terminal=os.isatty(2))
    if request is not None and not quick_can_read(request.image):
        request = None  # a URL: read through the full command line
    if request is None:
        os.environ.setdefault(*BLAS_THREADS)
        from .collection import pause_collection, resume_collection

        pause_collection()
        from .quickupload import main as quick_upload

        quick_upload(sys.argv[1:])  # exits when it takes the command line
        from .app import main as full_main

        resume_collection()
        full_main()
    else:
        sys.exit(run_quick_convert(request))
