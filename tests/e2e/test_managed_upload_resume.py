"""An interrupted ``azrestore upload --to-disk`` continues when run again (local Azure:
the Resource Manager simulator, the strict gateway, Azurite).

Judged from outside: the disk's state through the azure-mgmt-compute client, and its bytes
read back from storage with the Azure storage SDK and compared with the image's VHD body.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from azure.storage.blob.aio import BlobServiceClient

from azrestore.emulator import Emulator
from azrestore.formats.sizes import MiB
from tests.support.compute import compute_client
from tests.support.images import expected_vhd_body, make_sparse_image

pytestmark = pytest.mark.anyio
SUB = "00000000-0000-0000-0000-000000000000"
NAME = "resumed"
DISK_ID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/disks/{NAME}"
SIZE = 24 * MiB
#: The journal's header line is followed by 45-byte records, one per acknowledged chunk.
RECORD = 45


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(time_factor=0.002) as local_azure:
        yield local_azure


@pytest.fixture
def image(tmp_path: Path) -> Path:
    data = [(0, os.urandom(10 * MiB)), (12 * MiB, os.urandom(11 * MiB)), (SIZE - 4096, b"e" * 4096)]
    return make_sparse_image(tmp_path / "disk.raw", SIZE, data)


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
        "--concurrency",
        "2",
        "--chunk-size",
        "1MiB",
        "--journal-dir",
        str(journals),
        *extra,
    ]


def child_env(emulator: Emulator) -> dict[str, str]:
    return {**os.environ, **{k: str(v) for k, v in emulator.info()["env"].items()}}


async def run(emulator: Emulator, args: list[str]) -> tuple[int, str, str]:
    done = await anyio.run_process(args, env=child_env(emulator), check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def records(journals: Path) -> int:
    """Records in the journal(s) under ``journals`` (0 while there is none)."""
    total = 0
    for path in journals.glob("*.journal"):
        data = path.read_bytes()
        header_end = data.find(b"\n") + 1
        if header_end:
            total += (len(data) - header_end) // RECORD
    return total


async def interrupt(
    emulator: Emulator, args: list[str], journals: Path, how: signal.Signals
) -> tuple[int, str, str]:
    """Start ``args`` slowly, send signal ``how`` once its journal holds a few records,
    and return its exit code, stdout and stderr (the signal's negative for a kill)."""
    async with await anyio.open_process(args, env=child_env(emulator)) as process:
        out: list[bytes] = []
        err: list[bytes] = []

        async def drain(stream: Any, into: list[bytes]) -> None:
            into.extend([chunk async for chunk in stream])

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(drain, process.stdout, out)
            tasks.start_soon(drain, process.stderr, err)
            with anyio.move_on_after(60):
                while process.returncode is None and records(journals) < 3:  # noqa: ASYNC110
                    await anyio.sleep(0.05)  # polling a file another process writes
            if process.returncode is None:
                process.send_signal(how)
            code = await process.wait()
    return code, b"".join(out).decode(), b"".join(err).decode()


async def disk_state(emulator: Emulator) -> tuple[str, str]:
    """The disk's state and unique id, as azure-mgmt-compute reads them."""
    async with compute_client(emulator) as compute:
        disk = await compute.disks.get("rg", NAME)
    state = disk.disk_state
    return str(getattr(state, "value", state)), str(disk.unique_id)


async def disk_bytes(emulator: Emulator) -> bytes:
    """The disk's page blob, read back with the storage SDK straight from Azurite."""
    path = emulator.arm.state().disk(NAME).blob_path
    assert path is not None
    container, blob = path.strip("/").split("/", 1)
    async with BlobServiceClient.from_connection_string(
        emulator.azurite.connection_string
    ) as service:
        stream = await service.get_blob_client(container, blob).download_blob()
        return await stream.readall()


async def assert_uploaded(emulator: Emulator, image: Path) -> None:
    assert (await disk_state(emulator))[0] == "Unattached"
    data = await disk_bytes(emulator)
    body = expected_vhd_body(image)
    assert len(data) == len(body) + 512
    assert data[: len(body)] == body
    assert data[len(body) : len(body) + 8] == b"conectix"


async def test_killed_upload_continues(emulator: Emulator, image: Path, tmp_path: Path) -> None:
    journals = tmp_path / "journals"
    slow = command(image, journals, "--max-bandwidth", "3MiB")
    code, _, _ = await interrupt(emulator, slow, journals, signal.SIGKILL)
    assert code == -signal.SIGKILL
    kept = records(journals)
    assert kept >= 3
    assert (await disk_state(emulator))[0] == "ActiveUpload"

    code, out, err = await run(emulator, command(image, journals, "--json"))
    assert code == 0, err
    result = json.loads(out)
    assert result["disk_id"] == DISK_ID and result["disk_state"] == "Unattached"
    assert result["bytes_resumed"] >= kept * MiB
    assert result["bytes_uploaded"] + result["bytes_skipped"] + result["bytes_resumed"] == (
        SIZE + 512
    )
    await assert_uploaded(emulator, image)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_interrupted_upload_reports_the_open_disk_and_continues(
    emulator: Emulator, image: Path, tmp_path: Path, how: signal.Signals
) -> None:
    journals = tmp_path / "journals"
    slow = command(image, journals, "--max-bandwidth", "3MiB", "--json")
    code, out, err = await interrupt(emulator, slow, journals, how)
    assert code == 130, (code, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("azrestore: error: interrupted"), err
    assert DISK_ID in lines[0] and "ActiveUpload" in lines[0] and "left open" in lines[0]
    report = json.loads(out)
    assert report["disk_id"] == DISK_ID and report["disk_state"] == "ActiveUpload"
    assert report["interrupted"] is True and report["access_open"] is True
    assert (await disk_state(emulator))[0] == "ActiveUpload"

    code, out, err = await run(emulator, command(image, journals, "--json"))
    assert code == 0, err
    assert json.loads(out)["bytes_resumed"] > 0
    await assert_uploaded(emulator, image)


async def test_open_disk_without_its_journal_is_refused_until_restart(
    emulator: Emulator, image: Path, tmp_path: Path
) -> None:
    journals = tmp_path / "journals"
    slow = command(image, journals, "--max-bandwidth", "3MiB")
    code, _, _ = await interrupt(emulator, slow, journals, signal.SIGKILL)
    assert code == -signal.SIGKILL
    _, first_id = await disk_state(emulator)
    for path in journals.glob("*.journal"):
        path.unlink()  # lost, or the upload ran on another machine

    emulator.gateway.reset_statistics()
    before = len(emulator.arm.log(polls=False))
    code, out, err = await run(emulator, command(image, journals))
    assert code == 2, err
    assert out == "" and len(err.splitlines()) == 1, err
    assert DISK_ID in err and "--restart" in err and "ActiveUpload" in err
    # Nothing was written, and no access granted, revoked or disk touched but read.
    assert emulator.gateway.statistics().requests.get("PutPage", 0) == 0
    log = emulator.arm.log(polls=False)[before:]
    operations = [e.operation for e in log if e.kind == "request"]
    assert set(operations) <= {"disks/read"}, operations
    assert (await disk_state(emulator))[0] == "ActiveUpload"

    code, out, err = await run(emulator, command(image, journals, "--restart", "--json"))
    assert code == 0, err
    assert json.loads(out)["bytes_resumed"] == 0
    _, second_id = await disk_state(emulator)
    assert second_id != first_id  # deleted and created again
    await assert_uploaded(emulator, image)


async def test_disk_created_elsewhere_and_ready_to_upload_is_refused(
    emulator: Emulator, image: Path, tmp_path: Path
) -> None:
    async with compute_client(emulator) as compute:
        body = {
            "location": "westeurope",
            "properties": {
                "creationData": {"createOption": "Upload", "uploadSizeBytes": SIZE + 512}
            },
        }
        await (await compute.disks.begin_create_or_update("rg", NAME, body)).result()  # type: ignore[call-overload]
    code, _, err = await run(emulator, command(image, tmp_path / "journals"))
    assert code == 2, err
    assert DISK_ID in err and "ReadyToUpload" in err and "--restart" in err
    assert (await disk_state(emulator))[0] == "ReadyToUpload"
