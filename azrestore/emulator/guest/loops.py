"""Loop devices over disk files: attach one (with its partitions, by partx), find its
nodes' numbers in /sys, and take it all away again (device-mapper volumes left on it by
LVM first)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import anyio

__all__ = ["LoopDevice", "attach", "detach"]

_SYS_BLOCK = Path("/sys/block")


@dataclass(frozen=True)
class LoopDevice:
    """An attached loop device: its name (``loop3``), numbers, and its partitions'."""

    name: str
    major: int
    minor: int
    partitions: tuple[tuple[int, str, int, int], ...]
    """``(number, name, major, minor)`` of each partition the kernel knows."""

    @property
    def path(self) -> str:
        """``/dev/loopN``."""
        return f"/dev/{self.name}"


def _numbers(sys_dir: Path) -> tuple[int, int]:
    major, minor = (int(n) for n in (sys_dir / "dev").read_text().split(":"))
    return major, minor


def _describe(name: str) -> LoopDevice:
    sys_dir = _SYS_BLOCK / name
    major, minor = _numbers(sys_dir)
    partitions = []
    for child in sorted(sys_dir.glob(f"{name}p*")):
        number = int((child / "partition").read_text())
        partitions.append((number, child.name, *_numbers(child)))
    partitions.sort()
    return LoopDevice(name=name, major=major, minor=minor, partitions=tuple(partitions))


async def _run(*command: str) -> str:
    done = await anyio.run_process(list(command), check=False)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise OSError(f"{' '.join(command)}: {message or f'exit status {done.returncode}'}")
    return done.stdout.decode("utf-8", "replace")


async def attach(image: Path) -> LoopDevice:
    """``image`` on a free loop device, with nodes for its partitions in /sys."""
    path = (await _run("losetup", "--find", "--show", str(image))).strip()
    name = os.path.basename(path)
    try:
        # The kernel's own partition scan does not run everywhere (containers): partx does.
        await anyio.run_process(["partx", "--add", path], check=False)
        return await anyio.to_thread.run_sync(_describe, name)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await detach(name)
        raise


def _holders(name: str) -> list[str]:
    """The device-mapper devices on ``name`` or its partitions, the topmost first."""
    found: list[str] = []

    def walk(sys_dir: Path) -> None:
        holders = sys_dir / "holders"
        if not holders.is_dir():
            return
        for holder in sorted(holders.iterdir()):
            walk(_SYS_BLOCK / holder.name)
            if holder.name not in found:
                found.append(holder.name)

    base = _SYS_BLOCK / name
    walk(base)
    for child in sorted(base.glob(f"{name}p*")):
        walk(child)
    return found


def _dm_name(holder: str) -> str | None:
    try:
        return (_SYS_BLOCK / holder / "dm" / "name").read_text().strip()
    except OSError:
        return None


async def detach(name: str) -> list[str]:
    """Remove what sits on loop device ``name`` (dm volumes), its partitions, and the
    device itself. Returns the device-mapper names it removed."""
    removed: list[str] = []
    for holder in await anyio.to_thread.run_sync(_holders, name):
        dm_name = _dm_name(holder)
        if dm_name is None:
            continue
        done = await anyio.run_process(["dmsetup", "remove", "--retry", dm_name], check=False)
        if done.returncode == 0:
            removed.append(dm_name)
    path = f"/dev/{name}"
    await anyio.run_process(["partx", "--delete", path], check=False)
    await anyio.run_process(["losetup", "--detach", path], check=False)
    return removed
