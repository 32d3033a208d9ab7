"""Restores run as a user runs them, against an emulator the test started: the
``azrestore restore`` command in a child process (stopped by a signal at a chosen moment),
and the checks, made from outside, that a restore ended as it should."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import yaml
from azure.storage.blob.aio import BlobServiceClient

from azrestore.emulator import Emulator
from azrestore.formats.sizes import MiB
from azrestore.restore.outcome import RestoreReport
from tests.support.compute import compute_client
from tests.support.images import expected_vhd_body
from tests.support.restore import write_plan

#: The journal's header line is followed by 45-byte records, one per acknowledged chunk.
RECORD = 45
#: Disk states of a disk whose upload has not ended.
OPEN_STATES = ("ReadyToUpload", "ActiveUpload")
#: The shared VMs of the plans in tests.support.restore.
SHARED_VMS = ("helper-linux", "helper-windows", "azproxy")


#: Where :func:`dense_copy` writes random data into each backup: clear of the partition
#: tables and file-system headers that planning reads (offset, length), in MiB.
_DENSE = {
    "web01-os.raw": (30, 20),
    "dc01-os.raw": (40, 20),
    "db01-os.raw": (36, 10),
    "db01-data0.raw": (10, 8),
    "db01-data1.raw": (12, 8),
}


def dense_copy(backups: Path, into: Path, seed: int = 0) -> Path:
    """A copy of the three-VM ``backups`` with tens of MiB of random data in each, so that
    an upload lasts long enough to be interrupted midway (the originals hold little)."""
    rng = random.Random(seed)
    into.mkdir(parents=True, exist_ok=True)
    for name, (offset, length) in _DENSE.items():
        shutil.copyfile(backups / name, into / name)
        with (into / name).open("r+b") as image:
            image.seek(offset * MiB)
            image.write(rng.randbytes(length * MiB))
    return into


def arm_env(emulator: Emulator) -> dict[str, str]:
    """The emulator's environment variables (Resource Manager endpoint, token, ...)."""
    return {k: str(v) for k, v in emulator.info()["env"].items()}


def plan_with_bandwidth(directory: Path, backups: Path, rate: str | None) -> Path:
    """The three-VM plan of :func:`write_plan`, sent in 1 MiB chunks two at a time, at
    most ``rate`` per second (None: no cap)."""
    transfer: dict[str, Any] = {"concurrency": 2, "chunk_size": "1MiB"}
    if rate is not None:
        transfer["max_bandwidth"] = f"{rate}/s"
    path = write_plan(directory, backups)
    data = yaml.safe_load(path.read_text())
    data["transfer"] = transfer
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def journal_records(journals: Path) -> int:
    """Records in the journals under ``journals`` (0 while there are none)."""
    total = 0
    for path in journals.glob("*.journal"):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # replaced while it was read
            continue
        header_end = data.find(b"\n") + 1
        if header_end:
            total += (len(data) - header_end) // RECORD
    return total


def restore_command(plan: Path, journals: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "azrestore.cli.app",
        "restore",
        str(plan),
        "--json",
        "--journal-dir",
        str(journals),
        *extra,
    ]


async def run_restore_command(
    emulator: Emulator,
    plan: Path,
    journals: Path,
    *extra: str,
    stop: signal.Signals | None = None,
    when: Callable[[], bool] | None = None,
    limit: float = 120,
) -> tuple[int, str, str]:
    """Run ``azrestore restore PLAN --json`` against ``emulator``; with ``stop``, send
    that signal once ``when()`` holds. Returns the exit code (a kill's negative signal
    number), stdout and stderr. The child is killed if it outlives ``limit`` seconds."""
    env = {**os.environ, **arm_env(emulator)}
    args = restore_command(plan, journals, *extra)
    async with await anyio.open_process(args, env=env) as process:
        out: list[bytes] = []
        err: list[bytes] = []

        async def drain(stream: Any, into: list[bytes]) -> None:
            into.extend([chunk async for chunk in stream])

        try:
            with anyio.fail_after(limit):
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(drain, process.stdout, out)
                    tasks.start_soon(drain, process.stderr, err)
                    if stop is not None:
                        while process.returncode is None and not (when is None or when()):  # noqa: ASYNC110
                            await anyio.sleep(0.02)  # polling files another process writes
                        if process.returncode is None:
                            process.send_signal(stop)
                    code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                with anyio.CancelScope(shield=True):
                    await process.wait()
    return code, b"".join(out).decode(), b"".join(err).decode()


async def disk_state(emulator: Emulator, disk_id: str) -> str:
    """A disk's state, as azure-mgmt-compute reads it."""
    parts = disk_id.split("/")
    async with compute_client(emulator) as compute:
        disk = await compute.disks.get(parts[4], parts[-1])
    state = disk.disk_state
    return str(getattr(state, "value", state))


async def disk_bytes(emulator: Emulator, name: str) -> bytes:
    """A managed disk's page blob, read back with the storage SDK straight from Azurite."""
    path = emulator.arm.state().disk(name).blob_path
    assert path is not None
    container, blob = path.strip("/").split("/", 1)
    async with BlobServiceClient.from_connection_string(
        emulator.azurite.connection_string
    ) as service:
        stream = await service.get_blob_client(container, blob).download_blob()
        return await stream.readall()


async def assert_restored(emulator: Emulator, backups: Path, report: RestoreReport) -> None:
    """Every VM succeeded and runs with its agent Ready; every disk holds exactly its
    image as a fixed VHD; no disk is left open for upload; the helpers and the proxy are
    deallocated."""
    assert report.succeeded, [vm.error for vm in report.vms]
    state = emulator.arm.state()
    for vm in report.vms:
        view = state.vm(vm.name)
        assert view.power_state == "running" and view.agent_status == "Ready", vm.name
        for disk in vm.disks:
            assert disk.disk_id is not None
            name = disk.disk_id.rsplit("/", 1)[-1]
            data = await disk_bytes(emulator, name)
            body = expected_vhd_body(backups / Path(disk.path).name)
            assert len(data) == len(body) + 512, name
            assert data[: len(body)] == body, f"{name} differs from {disk.path}"
            assert data[len(body) : len(body) + 8] == b"conectix", name
    async with compute_client(emulator) as compute:
        states = {
            str(d.name): str(getattr(d.disk_state, "value", d.disk_state))
            async for d in compute.disks.list()
        }
    assert not {n: s for n, s in states.items() if s in OPEN_STATES}, states
    for shared in SHARED_VMS:
        assert state.vm(shared).power_state == "deallocated", shared


def signal_name(number: int) -> str:
    return signal.Signals(-number).name if number < 0 else str(number)
