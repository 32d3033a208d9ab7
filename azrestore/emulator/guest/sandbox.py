"""One run of a program in a guest sandbox: a private mount and PID namespace (made by
``unshare``) with its own /dev holding the VM's data disks where Azure's Linux VMs show
them (``/dev/disk/azure/scsi1/lunN`` and an ``sdX`` name), and private /tmp, /run and
/var/lib/azrestore. ``launcher.sh`` builds it; this module feeds it and reads its results.
"""

from __future__ import annotations

import contextlib
import string
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Final

import anyio

from azrestore.emulator.guest.loops import LoopDevice

__all__ = [
    "OUTPUT_LIMIT",
    "GuestDisk",
    "PhaseResult",
    "SandboxError",
    "run_phase",
    "sd_name",
    "write_devices",
]

#: The bytes of each stream Run Command reports (the last ones).
OUTPUT_LIMIT: Final = 4096
_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SandboxError(Exception):
    """The sandbox itself could not be set up (not the program's failure)."""


@dataclass(frozen=True)
class GuestDisk:
    """A data disk as the guest sees it: its LUN, its ``sdX`` name and its loop device."""

    lun: int
    sd: str
    loop: LoopDevice


@dataclass(frozen=True)
class PhaseResult:
    """How a program ended: exit status (None when it timed out) and its streams' tails."""

    exit_code: int | None
    stdout: str
    stderr: str


def sd_name(index: int) -> str:
    """The ``sdX`` name of the ``index``-th data disk: sdc on (sda: OS disk, sdb: the
    resource disk), then sdz, sdaa..."""
    number = index + 3
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = string.ascii_lowercase[rest] + letters
    return f"sd{letters}"


def _devices(disks: Sequence[GuestDisk]) -> str:
    lines = []
    for disk in disks:
        loop = disk.loop
        lines.append(f"disk {disk.lun} {disk.sd} {loop.name} {loop.major}:{loop.minor}")
        for number, name, major, minor in loop.partitions:
            lines.append(f"part {disk.lun} {number} {disk.sd} {name} {major}:{minor}")
    return "".join(f"{line}\n" for line in lines)


def _nul(items: Sequence[str]) -> bytes:
    return b"".join(item.encode("utf-8", "surrogateescape") + b"\0" for item in items)


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as file:
            file.seek(0, 2)
            size = file.tell()
            file.seek(max(0, size - OUTPUT_LIMIT))
            data = file.read()
    except FileNotFoundError:
        return ""
    return data.decode("utf-8", "ignore")


def write_devices(work: Path, disks: Sequence[GuestDisk]) -> None:
    """The devices file the launcher makes /dev from."""
    (work / "devices").write_text(_devices(disks))


async def run_phase(
    work: Path,
    phase: str,
    program: str,
    *,
    env: Mapping[str, str],
    args: Sequence[str] = (),
    time_limit: float,
    keep: Sequence[Path] = (),
) -> PhaseResult:
    """Run ``program`` (shell text) as root in a fresh sandbox over ``work/devices``.
    ``keep``: host directories the program needs that may lie under the sandbox's private
    /tmp, /run, /mnt or /var/lib/azrestore; they stay visible there, read-only."""
    (work / f"{phase}.sh").write_text(program)
    (work / f"{phase}.keep").write_bytes(_nul([str(path) for path in keep]))
    environment = {"PATH": _PATH, "HOME": "/root", "LANG": "C.UTF-8", **env}
    (work / f"{phase}.env").write_bytes(_nul([f"{k}={v}" for k, v in environment.items()]))
    (work / f"{phase}.args").write_bytes(_nul(list(args)))
    launcher = files("azrestore.emulator.guest").joinpath("launcher.sh")
    with contextlib.ExitStack() as stack:
        launcher_path = stack.enter_context(as_file(launcher))
        command = [
            *("unshare", "--mount", "--propagation", "private", "--pid", "--fork"),
            *("--kill-child", "--mount-proc", "bash", str(launcher_path), str(work), phase),
        ]
        process = await anyio.open_process(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        timed_out = False
        try:
            with anyio.move_on_after(time_limit) as scope:
                await process.wait()
            timed_out = scope.cancelled_caught
        finally:
            if process.returncode is None:
                with anyio.CancelScope(shield=True):
                    process.kill()
                    await process.wait()
    stdout, stderr = _tail(work / f"{phase}.out"), _tail(work / f"{phase}.err")
    if timed_out:
        return PhaseResult(exit_code=None, stdout=stdout, stderr=stderr)
    rc_file = work / f"{phase}.rc"
    if not rc_file.exists():
        problem = _tail(work / f"{phase}.launcher.err").strip()
        raise SandboxError(
            f"the guest sandbox did not start (exit status {process.returncode}): "
            f"{problem or 'no message'}"
        )
    return PhaseResult(exit_code=int(rc_file.read_text().strip()), stdout=stdout, stderr=stderr)
