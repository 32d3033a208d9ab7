"""Where a benchmark's JSON document goes, and the facts that come with it: the date, the
machine it ran on and the versions of azrestore and its peers, so that a figure quoted in
docs/benchmarks.md can be traced to what was measured."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from .images import GiB
from .tools import REPO

RESULTS_DIR = REPO / "benchmarks" / "results"


def default_path(name: str) -> Path:
    """``benchmarks/results/<name>.json``."""
    return RESULTS_DIR / f"{name}.json"


def started() -> str:
    """Now, in UTC, as the documents' ``started`` field."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def machine_info(workdir: Path) -> dict[str, Any]:
    """The host: CPUs, memory, kernel, Python, load and the work dir's free space."""
    usage = shutil.disk_usage(workdir)
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "workdir_free_gib": round(usage.free / GiB, 1),
    }


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _azurite_version() -> str | None:
    from azrestore.emulator.azurite import find_azurite

    try:
        executable = find_azurite()
        result = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=60
        )
    except Exception:  # not installed, or it does not run: the version is only a note
        return None
    text = result.stdout.strip()
    return text.splitlines()[0] if text else None


def versions(extra: dict[str, str | None] | None = None) -> dict[str, str | None]:
    """azrestore's version and its peers': the Python packages, Azurite, plus ``extra``
    (AzCopy and qemu-img, which the caller has already found)."""
    found: dict[str, str | None] = {
        "azrestore": _package_version("azrestore"),
        "azure-storage-blob": _package_version("azure-storage-blob"),
        "aiohttp": _package_version("aiohttp"),
        "uvloop": _package_version("uvloop"),
        "azurite": _azurite_version(),
    }
    found.update(extra or {})
    return found


def json_out_path(value: str, name: str) -> Path | None:
    """What ``--json-out`` means: a file, ``-`` for none, or empty for the default
    ``benchmarks/results/<name>.json``."""
    if value == "-":
        return None
    return Path(value) if value else default_path(name)


def write(text: str, path: Path | None) -> None:
    """Write the document to ``path`` (its folder made when missing); None writes nothing."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
