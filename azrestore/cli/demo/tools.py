"""The outside tools the demo builds its backups with (disk tools, and ``qemu-img`` to turn
the raw images into the exports a backup hands over): whether they are there, and running one."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ...errors import AzRestoreError

REQUIRED_TOOLS = ("sfdisk", "mkfs.ext4", "mkfs.vfat", "mkntfs", "openssl", "sbsign")
#: qemu-utils: ``qemu-img`` writes the exports, and ``qemu-nbd`` is how azrestore reads them.
QEMU_TOOLS = ("qemu-img", "qemu-nbd")
QEMU_MISSING = (
    "the demo's backups are a VMDK and a VHDX, written by qemu-img and read by azrestore"
    " through qemu-nbd (run `make install`, or apt-get install qemu-utils)"
)


class DemoError(AzRestoreError):
    """A step of the demo failed; the message says which and why (exit code 1)."""


def run_tool(argv: Sequence[str], stdin: str | None = None) -> None:
    """Run a disk tool quietly; its stderr becomes the error when it fails."""
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, input=stdin)
    except FileNotFoundError:
        if argv[0] in QEMU_TOOLS:
            raise DemoError(f"{argv[0]} not found: {QEMU_MISSING}") from None
        raise DemoError(f"{argv[0]} not found (run `make install`)") from None
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:]
        raise DemoError(f"{shlex.join(argv)} failed: {' '.join(detail)}") from None


def export_image(raw: Path, target: Path, fmt: str, subformat: str) -> None:
    """Write the raw image ``raw`` as ``target`` in format ``fmt`` (``vmdk``, ``vhdx``)
    and ``subformat`` with ``qemu-img convert``, as a backup product's export would be.

    It is written under a temporary name and renamed when whole, so that an interrupted
    demo never leaves half an export behind."""
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        run_tool(
            [
                *("qemu-img", "convert", "-q", "-f", "raw", "-O", fmt),
                *("-o", f"subformat={subformat}", str(raw), str(partial)),
            ]
        )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def preflight() -> None:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise DemoError(f"missing {', '.join(missing)} (run `make install`)")
    qemu_missing = [tool for tool in QEMU_TOOLS if shutil.which(tool) is None]
    if qemu_missing:
        raise DemoError(f"missing {', '.join(qemu_missing)}: {QEMU_MISSING}")
    from ...emulator.azurite import find_azurite

    find_azurite()  # says what to install when Azurite or Node.js is missing
