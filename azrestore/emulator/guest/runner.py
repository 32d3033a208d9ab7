"""A Run Command script run for real on an emulated Linux VM: its data disks brought from
storage onto loop devices, the script run as root in a guest sandbox, the disks judged by
the emulator's own inspection, what changed put back, and everything taken away again."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio

from azrestore.emulator.arm.storage import DiskStorage
from azrestore.emulator.guest.blobdisk import DiskFile, PutBack, materialize, put_back
from azrestore.emulator.guest.loops import LoopDevice, attach, detach
from azrestore.emulator.guest.sandbox import GuestDisk, run_phase, sd_name, write_devices

__all__ = ["RUN_COMMAND_TIMEOUT", "AttachedDisk", "GuestRun", "Verdict", "run_guest_script"]

#: How long Azure lets a run command script run (real seconds: not scaled).
RUN_COMMAND_TIMEOUT: Final = 90 * 60.0
_INSPECT_TIMEOUT: Final = 600.0
_WORK_ROOT: Final = "/var/tmp"


@dataclass(frozen=True)
class AttachedDisk:
    """A data disk of the VM: its LUN, its resource id and the container of its blob."""

    lun: int
    disk_id: str
    container: str


@dataclass(frozen=True)
class Verdict:
    """The emulator's judgement of one disk after the script: an OS disk with a working
    guest agent (``ready``), and what it found."""

    ready: bool
    os: str | None
    evidence: tuple[str, ...]
    problems: tuple[str, ...]


@dataclass(frozen=True)
class GuestRun:
    """How the script ended (``exit_code`` None: timed out), the tails of its streams, the
    verdict on each disk (by resource id), what was written back, and timings."""

    exit_code: int | None
    stdout: str
    stderr: str
    verdicts: dict[str, Verdict]
    written: dict[str, PutBack]
    downloaded: int
    seconds: dict[str, float]


def _verdicts(work: Path, disks: Sequence[AttachedDisk]) -> dict[str, Verdict]:
    try:
        found: dict[str, Any] = json.loads((work / "inspect.out").read_text() or "{}")
    except (OSError, ValueError):
        found = {}
    verdicts = {}
    for disk in disks:
        entry = found.get(str(disk.lun))
        if not isinstance(entry, dict):
            entry = {"problems": ["the emulator could not inspect the disk"]}
        verdicts[disk.disk_id] = Verdict(
            ready=bool(entry.get("ready")),
            os=entry.get("os"),
            evidence=tuple(entry.get("evidence") or ()),
            problems=tuple(entry.get("problems") or ()),
        )
    return verdicts


def _inspector() -> tuple[str, dict[str, str], tuple[Path, ...]]:
    # The directory holding the azrestore package (…/azrestore/emulator/guest/runner.py).
    package_root = Path(__file__).resolve().parents[3]
    program = f"exec '{sys.executable}' -m azrestore.emulator.guest.inspect\n"
    # The interpreter, its packages and azrestore may live under /tmp (a checkout there,
    # say), which the sandbox covers with its own: they are kept visible.
    keep = tuple(
        dict.fromkeys(Path(p).resolve() for p in (package_root, sys.prefix, sys.base_prefix))
    )
    return program, {"PYTHONPATH": str(package_root), "PYTHONDONTWRITEBYTECODE": "1"}, keep


async def run_guest_script(
    storage: DiskStorage,
    disks: Sequence[AttachedDisk],
    script: str,
    parameters: Sequence[tuple[str, str]],
    *,
    time_limit: float = RUN_COMMAND_TIMEOUT,
) -> GuestRun:
    """Run ``script`` as RunShellScript does (named parameters in the environment, unnamed
    ones as arguments) with ``disks`` attached; judge and put back the disks."""
    ordered = sorted(disks, key=lambda d: d.lun)
    work = Path(tempfile.mkdtemp(prefix="azrestore-guest.", dir=_WORK_ROOT))
    files: dict[str, DiskFile] = {}
    loops: list[LoopDevice] = []
    seconds: dict[str, float] = {}
    written: dict[str, PutBack] = {}
    started = time.monotonic()
    try:
        async with anyio.create_task_group() as tasks:
            for disk in ordered:

                async def fetch(disk: AttachedDisk = disk) -> None:
                    path = work / f"lun{disk.lun}.img"
                    files[disk.disk_id] = await materialize(storage, disk.container, path)

                tasks.start_soon(fetch)
        seconds["download"] = time.monotonic() - started
        guest: list[GuestDisk] = []
        for index, disk in enumerate(ordered):
            loop = await attach(files[disk.disk_id].path)
            loops.append(loop)
            guest.append(GuestDisk(lun=disk.lun, sd=sd_name(index), loop=loop))
        write_devices(work, guest)
        env = {name: value for name, value in parameters if name}
        args = [value for name, value in parameters if not name]
        mark = time.monotonic()
        result = await run_phase(work, "script", script, env=env, args=args, time_limit=time_limit)
        seconds["script"] = time.monotonic() - mark
        mark = time.monotonic()
        program, inspect_env, keep = _inspector()
        await run_phase(
            work, "inspect", program, env=inspect_env, time_limit=_INSPECT_TIMEOUT, keep=keep
        )
        seconds["inspect"] = time.monotonic() - mark
        verdicts = _verdicts(work, ordered)
    finally:
        with anyio.CancelScope(shield=True):
            for loop in loops:
                await detach(loop.name)
            if len(loops) == len(ordered):
                mark = time.monotonic()
                for disk_id, disk_file in files.items():
                    written[disk_id] = await put_back(storage, disk_file)
                seconds["upload"] = time.monotonic() - mark
            await anyio.to_thread.run_sync(shutil.rmtree, work, True)
    seconds["total"] = time.monotonic() - started
    return GuestRun(
        exit_code=result.exit_code,
        stdout=result.stdout,
        stderr=result.stderr,
        verdicts=verdicts,
        written=written,
        downloaded=sum(f.downloaded for f in files.values()),
        seconds=seconds,
    )
