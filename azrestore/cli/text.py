"""Plain-text output shared by the full command line and its quick start: error lines,
JSON reports and the summary of a conversion. Imports nothing heavy (no rich, no typer)."""

from __future__ import annotations

import sys

from ..formats.sizes import format_size

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

    from ..transfer.convert import ConvertResult

PROG = "azrestore"


def one_line(text: str) -> str:
    """``text`` joined into one line, its lines separated by '; '."""
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def error_line(message: str, *, prog: str = PROG) -> None:
    """Print ``azrestore: error: <message>`` (one line, secrets redacted) on stderr."""
    from ..redact import redact_text  # only on failure: redact loads re (start-up time)

    print(f"{prog}: error: {redact_text(one_line(message))}", file=sys.stderr, flush=True)


def print_json(data: dict[str, Any]) -> None:
    print(json_text(data))


def json_text(data: dict[str, Any]) -> str:
    """``json.dumps(data, indent=2)``, exactly.

    A flat object (string keys; strings, finite numbers, booleans and nulls) is written
    here, its strings quoted by the C function json itself uses: importing json loads re,
    a noticeable share of the quick ``convert``'s time. Anything else goes to json."""
    try:
        from _json import encode_basestring_ascii as quote
    except ImportError:  # not CPython
        return _json_dumps(data)
    members = []
    for key, value in data.items():
        if isinstance(value, str):
            text = quote(value)
        elif value is None or isinstance(value, bool):
            text = {None: "null", True: "true", False: "false"}[value]
        elif isinstance(value, int):
            text = int.__repr__(value)
        elif isinstance(value, float) and value - value == 0:  # finite: json has NaN its way
            text = float.__repr__(value)
        else:
            return _json_dumps(data)
        if not isinstance(key, str):
            return _json_dumps(data)
        members.append(f"  {quote(key)}: {text}")
    return "{\n" + ",\n".join(members) + "\n}" if members else _json_dumps(data)


def _json_dumps(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, indent=2)


def convert_summary(result: ConvertResult) -> str:
    """One line that says what a finished conversion did."""
    cloned = f" ({format_size(result.bytes_cloned)} of it cloned)" if result.bytes_cloned else ""
    return (
        f"wrote {result.output}: fixed VHD of {format_size(result.virtual_size)}"
        f" + 512 B footer from a {format_size(result.disk_size)} disk,"
        f" {format_size(result.bytes_copied)} of data copied{cloned},"
        f" in {result.seconds:.1f} s ({result.throughput_mib_s:.1f} MiB/s)"
    )
