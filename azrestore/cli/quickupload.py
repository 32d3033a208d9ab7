"""A quick start for scripted ``upload``: one image into one page blob, with ``--json``,
run without the full command line (typer, pydantic, rich: about half the CPU an upload
of an empty disk costs before it sends anything; figures in docs/benchmarks.md).

``azrestore [--debug] upload IMAGE --to URL --json`` with any of ``--overwrite``,
``--restart``, ``--existing``, ``--checksum md5|crc64|none``, ``--concurrency N`` and
``--journal-dir DIR`` runs here, with the same job, output, error lines and exit codes as
the full command. Anything else (help, text output, pairs or a manifest, ``--to-disk``,
other options, a value the full parser would word an error for) goes to the full command
line, which checks and reports it.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Sequence

#: The flags the quick start takes, and the options with a value.
UPLOAD_FLAGS = frozenset({"--json", "--overwrite", "--restart", "--existing"})
UPLOAD_OPTIONS = frozenset({"--to", "--checksum", "--concurrency", "--journal-dir"})
_CHECKSUMS = ("md5", "crc64", "none")


class QuickUpload:
    """An upload for the quick start to run (a plain class: see entry.QuickConvert)."""

    __slots__ = ("debug", "flags", "image", "options")

    def __init__(self, image: str, flags: set[str], options: dict[str, str], debug: bool) -> None:
        self.image = image
        self.flags = flags
        self.options = options
        self.debug = debug

    def __repr__(self) -> str:
        return f"QuickUpload({self.image!r}, {sorted(self.flags)}, {self.options}, {self.debug})"


def parse_quick_upload(argv: Sequence[str]) -> QuickUpload | None:
    """The upload ``argv`` asks for, or None when the full command line should run."""
    args = list(argv)
    debug = bool(args) and args[0] == "--debug"
    if debug:
        args.pop(0)
    if not args or args[0] != "upload":
        return None
    flags: set[str] = set()
    options: dict[str, str] = {}
    images: list[str] = []
    rest = args[1:]
    index = 0
    while index < len(rest):
        arg = rest[index]
        if arg in UPLOAD_FLAGS and arg not in flags:
            flags.add(arg)
        elif arg in UPLOAD_OPTIONS and arg not in options and index + 1 < len(rest):
            index += 1
            options[arg] = rest[index]
        elif arg.startswith("-") or "=" in arg:
            return None  # another option, or an IMAGE=URL pair: the full command line's
        else:
            images.append(arg)
        index += 1
    if len(images) != 1 or "--json" not in flags or "--to" not in options:
        return None
    if options["--to"].startswith("-") or options.get("--journal-dir", "x").startswith("-"):
        return None
    if options.get("--checksum", "crc64").lower() not in _CHECKSUMS:
        return None
    concurrency = options.get("--concurrency", "1")
    if not (concurrency.isascii() and concurrency.isdigit()):
        return None
    return QuickUpload(images[0], flags, options, debug)


def run_quick_upload(request: QuickUpload) -> int:
    """Upload as ``azrestore upload IMAGE --to URL --json`` does; returns the exit code."""
    from .edge import report_error

    try:
        return _upload(request)
    except (KeyboardInterrupt, Exception) as exc:
        return report_error(exc, debug=request.debug)


def _upload(request: QuickUpload) -> int:
    from pathlib import Path

    # pageblob, pipeline and verify: what the job imports as it starts, loaded here
    # while collection is paused (see collection.py).
    from ..azure import pageblob  # noqa: F401
    from ..jobs.upload import BlobTarget, upload_to_page_blob
    from ..redact import redact_url
    from ..transfer import pipeline, verify  # noqa: F401
    from ..transfer.config import Checksum, TransferConfig
    from ..transfer.resume import ResumeOptions
    from . import environment
    from .collection import resume_collection
    from .loop import run
    from .text import print_json

    resume_collection()

    options, flags = request.options, request.flags
    defaults = TransferConfig()
    config = TransferConfig(
        # None: found from the link, as the full command line leaves it without the option
        concurrency=int(options["--concurrency"]) if "--concurrency" in options else None,
        chunk_size=defaults.chunk_size,
        checksum=Checksum(options.get("--checksum", defaults.checksum).lower()),
        max_bandwidth=None,
    )
    journal_dir = options.get("--journal-dir")
    if journal_dir is not None:
        journals = Path(journal_dir)
    else:
        journals = environment.default_journal_dir(os.environ)
    resume = ResumeOptions(directory=journals, restart="--restart" in flags)
    proxy = environment.proxy_settings(os.environ, None)
    target = BlobTarget(
        os.environ.get(environment.CONNECTION_STRING_ENV) or None,
        "--overwrite" in flags or "--restart" in flags,
        "--existing" in flags,
        proxy=proxy,
    )
    result, _ = run(
        upload_to_page_blob(request.image, options["--to"], target, config=config, resume=resume)
    )
    data = result.to_json()
    data["url"] = redact_url(str(data["url"]))
    print_json(data)
    return 0


def main(argv: Sequence[str]) -> bool:
    """Run ``argv`` here and exit when the quick start takes it; False when it does not."""
    request = parse_quick_upload(argv)
    if request is None:
        return False
    sys.exit(run_quick_upload(request))
