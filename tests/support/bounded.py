"""Running the command line on hostile input as a child process with a memory limit and a
timeout, so that a regression (an alias bomb expanded, a file read whole) fails the test
instead of eating the machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.cli import azrestore_script

#: Address space the child may map: plenty for the command line, far less than a bomb.
MEMORY_LIMIT = 1 << 30
#: Seconds before the child is killed (the bombs are refused in well under one).
TIMEOUT = 120


# Set in a small Python that then becomes the command (no preexec_fn: not fork-safe once
# the test process has threads).
_LIMITED = (
    "import os, resource, sys;"
    f" resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT}));"
    " os.execv(sys.argv[1], sys.argv[1:])"
)


def run_bounded(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``azrestore ARGS`` under :data:`MEMORY_LIMIT`; killed (and the test failed by
    ``TimeoutExpired``) after :data:`TIMEOUT` seconds."""
    return subprocess.run(
        [sys.executable, "-c", _LIMITED, *azrestore_script(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


_READ_ALL = """
import importlib, json, sys
module, name = sys.argv[1].rsplit(".", 1)
read = getattr(importlib.import_module(module), name)
for path in sys.argv[2:]:
    try:
        read(path)
        outcome = [None, 0, ""]
    except BaseException as exc:
        outcome = [type(exc).__name__, getattr(exc, "exit_code", None), str(exc)]
    print(json.dumps(outcome), flush=True)
"""


def read_bounded(reader: str, paths: list[Path]) -> list[tuple[str | None, int | None, str]]:
    """Call ``reader`` (``package.module.function``) on each of ``paths`` in one child
    process under :data:`MEMORY_LIMIT` and :data:`TIMEOUT`: for each, the name of the
    exception it raised (None: it returned), that exception's exit code and message."""
    import json

    limit = f"({MEMORY_LIMIT}, {MEMORY_LIMIT})"
    script = f"import resource; resource.setrlimit(resource.RLIMIT_AS, {limit})\n"
    result = subprocess.run(
        [sys.executable, "-c", script + _READ_ALL, reader, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    outcomes = [tuple(json.loads(line)) for line in result.stdout.splitlines()]
    assert len(outcomes) == len(paths), (result.returncode, result.stdout, result.stderr)
    return outcomes


def read_manifest_at(path: str) -> object:
    """:func:`~azrestore.jobs.manifest.read_manifest` of a path given as text (for
    :func:`read_bounded`)."""
    from azrestore.jobs.manifest import read_manifest

    return read_manifest(Path(path))
