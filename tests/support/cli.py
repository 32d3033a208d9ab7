"""Running the azrestore command line in tests: in process (typer's runner) and as a child
process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner, Result

from azrestore.cli.app import app
from azrestore.formats.sizes import SECTOR, MiB
from tests.support.images import make_sparse_image


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def azrestore_script() -> list[str]:
    """The console script installed next to this Python, else the module."""
    script = Path(sys.executable).with_name("azrestore")
    return [str(script)] if script.exists() else [sys.executable, "-m", "azrestore.cli"]


def run_script(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*azrestore_script(), *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(result: Result | subprocess.CompletedProcess[str], code: int) -> str:
    """The exit code, nothing on stdout, and exactly one ``azrestore: error:`` line."""
    exit_code = result.exit_code if isinstance(result, Result) else result.returncode
    assert exit_code == code, (exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("azrestore: error: "), lines[0]
    return lines[0]


def small_image(tmp_path: Path, size: int = 3 * MiB + 3 * SECTOR) -> Path:
    """A sparse image whose size is not a whole MiB, with data at both ends."""
    return make_sparse_image(
        tmp_path / "disk.img",
        size,
        [(0, b"boot" * 128), (MiB + 4096, os.urandom(70_000)), (size - SECTOR, b"\xaa" * SECTOR)],
    )
