"""The disk tools the demo builds its images with: whether they are there, and running one."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Sequence

from ...errors import AzRestoreError

REQUIRED_TOOLS = ("sfdisk", "mkfs.ext4", "mkfs.vfat", "mkntfs")


class DemoError(AzRestoreError):
    """A step of the demo failed; the message says which and why (exit code 1)."""


def run_tool(argv: Sequence[str], stdin: str | None = None) -> None:
    """Run a disk tool quietly; its stderr becomes the error when it fails."""
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, input=stdin)
    except FileNotFoundError:
        raise DemoError(f"{argv[0]} not found (run `make install`)") from None
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:]
        raise DemoError(f"{shlex.join(argv)} failed: {' '.join(detail)}") from None


def preflight() -> None:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise DemoError(f"missing {', '.join(missing)} (run `make install`)")
    from ...emulator.azurite import find_azurite

    find_azurite()  # says what to install when Azurite or Node.js is missing
