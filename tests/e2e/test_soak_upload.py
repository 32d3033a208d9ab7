"""Soaks of interrupted uploads: the same ``azrestore upload`` command interrupted 10 times
at seeded random moments (SIGINT and SIGKILL mixed), then run to the end, into a managed
disk (the emulator: Resource Manager simulator, strict gateway, Azurite) and from a
manifest of page blobs (the strict gateway and Azurite).

Judged from outside: the disk's state through azure-mgmt-compute, its bytes read back
through a read grant with azure-storage-blob, the blobs' bytes, page ranges and leases
with azure-storage-blob, every VHD compared with its image by qemu-img, and what all the
runs sent counted by the gateway. A failure message starts with the seed and every run.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from azrestore.emulator import Emulator
from azrestore.emulator.storage import GatewayThread
from azrestore.formats.sizes import MiB, blob_size
from azrestore.formats.vhd import VhdFooter
from azrestore.transfer.config import TransferConfig
from tests.support.compute import disk_state, read_disk
from tests.support.images import expected_vhd_body
from tests.support.pages import page_span
from tests.support.soak import Soak, bytes_needed, journal_bytes, qemu_compare, scattered_image
from tests.support.storage import StorageTarget
from tests.support.tools import needs

pytestmark = [pytest.mark.anyio, needs("qemu-img")]

SEED = int(os.environ.get("AZRESTORE_SOAK_SEED", "20261203"))
SUB = "00000000-0000-0000-0000-000000000000"
NAME = "soaked"
DISK_ID = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/disks/{NAME}"
CONCURRENCY = 2
CHUNK = MiB
#: What one interruption may cost: the requests then in flight, and a footer.
LOST_PER_INTERRUPTION = CONCURRENCY * CHUNK + 512
CONFIG = TransferConfig(concurrency=CONCURRENCY, chunk_size=CHUNK)
#: Open for upload, or open for reading: what no disk may be left in.
OPEN_STATES = {"ReadyToUpload", "ActiveUpload", "ActiveSAS"}


def azrestore(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "azrestore.cli.app", *map(str, args)]


def common_options(journals: Path) -> list[str]:
    return [
        "--concurrency",
        str(CONCURRENCY),
        "--chunk-size",
        "1MiB",
        "--journal-dir",
        str(journals),
    ]


def assert_vhd_is(data: bytes, image: Path, work: Path, context: str) -> None:
    """``data`` (a VHD read back) is the image, padded to a whole MiB, and a fixed VHD
    footer that qemu-img reads, and qemu-img finds it identical to the image."""
    body = expected_vhd_body(image)
    assert len(data) == len(body) + 512, context
    assert data[: len(body)] == body, f"the VHD differs from {image.name}\n{context}"
    assert VhdFooter.parse(data[-512:]).current_size == len(body), context
    vhd = work / f"{image.stem}.readback.vhd"
    vhd.write_bytes(data)
    info = json.loads(qemu_compare(image, vhd))
    assert info["format"] == "vpc" and info["virtual-size"] == len(body), (info, context)
    vhd.unlink()


# -- upload --to-disk ------------------------------------------------------------------


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(time_factor=0.002) as local_azure:
        yield local_azure


async def test_upload_to_disk_interrupted_ten_times(emulator: Emulator, tmp_path: Path) -> None:
    image = scattered_image(tmp_path / "disk.raw", 40 * MiB, 32 * MiB, SEED)
    journals = tmp_path / "journals"
    args = azrestore(
        "upload",
        image,
        "--to-disk",
        DISK_ID,
        "--location",
        "westeurope",
        "--os-type",
        "none",
        "--max-bandwidth",
        "2MiB",
        "--json",
        *common_options(journals),
    )
    env = {**os.environ, **{k: str(v) for k, v in emulator.info()["env"].items()}}

    def created() -> bool:  # the first run is stopped while the disk is created, or just after
        return NAME in {disk.name for disk in emulator.arm.state().disks.values()}

    soak = Soak(args, env, lambda: journal_bytes(journals), SEED, first_when=created)
    last = await soak.run_all()
    context = soak.context()
    assert last.code == 0, context
    result = json.loads(last.stdout)
    assert result["disk_id"] == DISK_ID and result["disk_state"] == "Unattached", context
    assert result["bytes_resumed"] > 0, context
    for run in soak.runs[:-1]:  # each stopped run said which disk it left, and the way on
        if run.how is not None and run.how.name == "SIGINT":
            report = json.loads(run.stdout)
            assert report["interrupted"] and report["disk_id"] == DISK_ID, context
            assert report["disk_state"] in {"Creating", "ReadyToUpload", "ActiveUpload"}, context
            assert DISK_ID in run.stderr and "same command again to continue" in run.stderr, context

    # No access left open: the SDK and the simulator's own state agree.
    assert await disk_state(emulator, "rg", NAME) == "Unattached", context
    assert emulator.arm.state().disk(NAME).disk_state == "Unattached", context
    assert_vhd_is(await read_disk(emulator, "rg", NAME), image, tmp_path, context)
    # The read grant went too.
    assert await disk_state(emulator, "rg", NAME) == "Unattached", context

    # Resumed, not started over: each interruption cost at most what was in flight.
    needed = bytes_needed(image, CONFIG)
    sent = emulator.gateway.statistics().bytes_received.get("PutPage", 0)
    assert needed <= sent <= needed + 10 * LOST_PER_INTERRUPTION, (sent, needed, context)
    assert sent < 2 * needed, (sent, needed, context)


# -- upload --manifest of page blobs -----------------------------------------------------


def assert_blob_is(
    storage: StorageTarget, name: str, image: Path, work: Path, context: str
) -> None:
    client = storage.blob_client(name)
    data = client.download_blob().readall()
    assert_vhd_is(data, image, work, context)
    for start, end in (page_span(r) for r in client.list_page_ranges() if not r.cleared):
        assert any(data[start:end]), f"{name}: an all-zero range {start}-{end}\n{context}"
    lease = client.get_blob_properties().lease
    assert (lease.status, lease.state) == ("unlocked", "available"), (name, context)


async def test_manifest_upload_interrupted_ten_times(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path
) -> None:
    images = {
        f"soak{n}": scattered_image(tmp_path / f"soak{n}.raw", size, data, SEED + n)
        for n, (size, data) in enumerate(
            [(24 * MiB, 12 * MiB), (32 * MiB + 3584, 14 * MiB), (48 * MiB, 16 * MiB)]
        )
    }
    manifest = tmp_path / "disks.yaml"
    manifest.write_text(
        "".join(
            f"- image: {path.name}\n  to: '{storage.sas_url(name + '.vhd')}'\n  name: {name}\n"
            for name, path in images.items()
        )
    )
    journals = tmp_path / "journals"
    args = azrestore(
        "upload",
        "--manifest",
        manifest,
        "--max-bandwidth",
        "2MiB",
        "--json",
        *common_options(journals),
    )

    def started() -> bool:  # the first run is stopped once a journal is there, or soon after
        return any(journals.glob("*.journal"))

    soak = Soak(args, dict(os.environ), lambda: journal_bytes(journals), SEED, first_when=started)
    last = await soak.run_all()
    context = soak.context()
    assert last.code == 0, context
    disks = {disk["name"]: disk for disk in json.loads(last.stdout)["disks"]}
    assert sorted(disks) == sorted(images), context
    for name, image in images.items():
        assert disks[name]["ok"], (disks[name], context)
        assert disks[name]["blob_size"] == blob_size(image.stat().st_size), context
        assert_blob_is(storage, f"{name}.vhd", image, tmp_path, context)
    assert sum(disk["bytes_resumed"] for disk in disks.values()) > 0, context

    needed = sum(bytes_needed(image, CONFIG) for image in images.values())
    sent = gateway.statistics().bytes_received.get("PutPage", 0)
    assert needed <= sent <= needed + 10 * LOST_PER_INTERRUPTION, (sent, needed, context)
    assert sent < 2 * needed, (sent, needed, context)
