"""The tools under test and their peers: where they are, what they are given, their versions."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
AZCOPY_DEFAULT = REPO / ".tools/node_modules/@azure-tools/azcopy-linux/dist/bin/azcopy_linux_amd64"
UPLOAD_TOOLS = ("azrestore", "sdk", "azcopy")
CONVERT_TOOLS = ("azrestore", "qemu-img")
ALL_TOOLS = ("azrestore", "sdk", "azcopy", "qemu-img")
QEMU_FIXED_VHD = ["-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size"]
#: Flags given to AzCopy besides source and destination (see README: why each).
AZCOPY_FLAGS = [
    "--blob-type",
    "PageBlob",
    "--from-to",
    "LocalBlob",
    "--overwrite",
    "true",
    "--log-level",
    "ERROR",
    "--output-level",
    "essential",
]


def find_azrestore() -> str | None:
    candidate = VENV_BIN / "azrestore"
    if candidate.exists():
        return str(candidate)
    return shutil.which("azrestore")


def compile_package() -> None:
    """Byte-compile the (editable) azrestore package, as installing a wheel does: with
    PYTHONDONTWRITEBYTECODE set, every timed ``azrestore convert`` would otherwise compile
    each module edited since its .pyc was written (its imports took 10 ms instead of 3)."""
    import compileall

    import azrestore

    compileall.compile_dir(Path(azrestore.__file__).parent, quiet=1)


def find_azcopy(explicit: str | None) -> tuple[str | None, str]:
    """AzCopy's binary (made executable) and its version, or None and why not."""
    path = Path(explicit or os.environ.get("AZCOPY_BIN") or AZCOPY_DEFAULT)
    if not path.exists():
        return None, f"AzCopy not found at {path} (make bench installs @azure-tools/azcopy-linux)"
    if not os.access(path, os.X_OK):
        try:
            path.chmod(path.stat().st_mode | 0o111)
        except OSError as exc:
            return None, f"cannot make {path} executable: {exc}"
    try:
        version = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{path} does not run: {exc}"
    return str(path), version


def tool_version(argv: list[str]) -> str | None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else None
