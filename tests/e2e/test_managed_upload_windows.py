"""``azrestore upload --to-disk`` stopped at the two moments the soak found, then the same
command run again: it finishes (local Azure: the Resource Manager simulator, the strict
gateway, Azurite).

- Stopped while the disk was being created, before the run had a journal: the next run
  found a disk open for upload that no journal named and refused it (exit 2, --restart).
- Stopped once access was revoked, before the run said so: the next run found the disk
  Unattached and said "the managed disk already exists" (exit 2), for ever.

The signal is sent the moment the simulator's state shows the disk in that state; judged
from outside: azure-mgmt-compute reads the disk's state and tags, its bytes are read back
through a read grant.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest

from azrestore.emulator import Emulator
from azrestore.formats.sizes import MiB
from tests.support.compute import compute_client, disk_state, read_disk
from tests.support.images import expected_vhd_body
from tests.support.soak import scattered_image

pytestmark = pytest.mark.anyio
SUB = "00000000-0000-0000-0000-000000000000"
NAME = "window"
DISK_ID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/disks/{NAME}"
SIGNALS = pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(time_factor=0.002) as local_azure:
        yield local_azure


def command(image: Path, journals: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "azrestore.cli.app",
        "upload",
        str(image),
        "--to-disk",
        DISK_ID,
        "--location",
        "westeurope",
        "--os-type",
        "none",
        "--journal-dir",
        str(journals),
        "--json",
        *extra,
    ]


def child_env(emulator: Emulator) -> dict[str, str]:
    return {**os.environ, **{k: str(v) for k, v in emulator.info()["env"].items()}}


def state_now(emulator: Emulator) -> str | None:
    """The disk's state in the simulator right now (None: it does not exist)."""
    disks = emulator.arm.state().disks
    found = [disk for disk in disks.values() if disk.name == NAME]
    return found[0].disk_state if found else None


async def stop_when(
    emulator: Emulator, args: list[str], ready: Callable[[str | None], bool], how: signal.Signals
) -> tuple[int, str]:
    """Run ``args``, send ``how`` as soon as the disk's state satisfies ``ready``; the
    exit code and stderr."""
    process = await anyio.open_process(args, env=child_env(emulator), stdout=subprocess.DEVNULL)
    try:
        with anyio.fail_after(60):
            while process.returncode is None and not ready(state_now(emulator)):  # noqa: ASYNC110
                await anyio.sleep(0.001)  # polling what another process does
            if process.returncode is None:
                process.send_signal(how)
            assert process.stderr is not None
            err = b"".join([chunk async for chunk in process.stderr]).decode()
            code = await process.wait()
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()
    return code, err


async def assert_disk_is(emulator: Emulator, image: Path) -> None:
    assert await disk_state(emulator, "rg", NAME) == "Unattached"
    data = await read_disk(emulator, "rg", NAME)
    body = expected_vhd_body(image)
    assert data[: len(body)] == body and data[len(body) : len(body) + 8] == b"conectix"
    assert await disk_state(emulator, "rg", NAME) == "Unattached"


@SIGNALS
async def test_stopped_while_the_disk_is_created(
    emulator: Emulator, tmp_path: Path, how: signal.Signals
) -> None:
    image = scattered_image(tmp_path / "disk.raw", 24 * MiB, 8 * MiB, 1)
    journals = tmp_path / "journals"
    code, err = await stop_when(emulator, command(image, journals), lambda s: s is not None, how)
    assert code == {signal.SIGKILL: -signal.SIGKILL, signal.SIGINT: 130}[how], err
    if how == signal.SIGINT:
        assert DISK_ID in err and "run the same command again to continue" in err, err
    assert state_now(emulator) in ("ReadyToUpload", "ActiveUpload")

    done = await anyio.run_process(command(image, journals), env=child_env(emulator), check=False)
    assert done.returncode == 0, done.stderr.decode()
    await assert_disk_is(emulator, image)
    async with compute_client(emulator) as compute:
        tags = (await compute.disks.get("rg", NAME)).tags or {}
    assert len(tags.get("azrestore-upload", "")) == 16, tags  # the run's upload id


@SIGNALS
async def test_stopped_once_access_is_revoked(
    emulator: Emulator, tmp_path: Path, how: signal.Signals
) -> None:
    image = scattered_image(tmp_path / "disk.raw", 24 * MiB, 8 * MiB, 2)
    journals = tmp_path / "journals"
    code, err = await stop_when(
        emulator, command(image, journals), lambda s: s == "Unattached", how
    )
    # The signal lands after the revoke, or the run ended before it could.
    assert code in (0, {signal.SIGKILL: -signal.SIGKILL, signal.SIGINT: 130}[how]), err
    assert state_now(emulator) == "Unattached"

    emulator.gateway.reset_statistics()
    done = await anyio.run_process(command(image, journals), env=child_env(emulator), check=False)
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    assert result["disk_state"] == "Unattached" and result["bytes_uploaded"] == 0
    assert result["bytes_resumed"] == 24 * MiB + 512
    assert emulator.gateway.statistics().requests.get("PutPage", 0) == 0
    await assert_disk_is(emulator, image)

    # Another image into the finished disk is still refused: it is not overwritten.
    other = scattered_image(tmp_path / "other.raw", 24 * MiB, 8 * MiB, 3)
    refused = await anyio.run_process(
        command(other, journals), env=child_env(emulator), check=False
    )
    assert refused.returncode == 2 and b"already exists" in refused.stderr
