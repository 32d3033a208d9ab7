"""Plain-text output shared by the full command line and its quick start: error lines,
JSON reports and the summary of a conversion. Imports nothing heavy (no rich, no typer)."""

from __future__ import annotations

import sys

from ..formats.sizes import format_size
from ..redact import redact_text
from ..transfer.convert import ConvertResult

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

PROG = "azrestore"


def one_line(text: str) -> str:
    """``text`` joined into one line, its lines separated by '; '."""
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def error_line(message: str) -> None:
    """Print ``azrestore: error: <message>`` (one line, secrets redacted) on stderr."""
    print(f"{PROG}: error: {redact_text(one_line(message))}", file=sys.stderr, flush=True)


def print_json(data: dict[str, Any]) -> None:
    import json  # only when asked for: start-up time of convert

    print(json.dumps(data, indent=2))


def convert_summary(result: ConvertResult) -> str:
    """One line that says what a finished conversion did."""
    return (
        f"wrote {result.output}: fixed VHD of {format_size(result.virtual_size)}"
        f" + 512 B footer from a {format_size(result.disk_size)} disk,"
        f" {format_size(result.bytes_copied)} of data copied,"
        f" in {result.seconds:.1f} s ({result.throughput_mib_s:.1f} MiB/s)"
    )
