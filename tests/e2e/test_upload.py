"""End to end: raw images uploaded through the strict gateway into Azurite, read back and
compared byte for byte, with page ranges and qemu-img as independent witnesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from azrestore.azure.pageblob import open_page_blob
from azrestore.emulator.storage import FaultRule, GatewayThread
from azrestore.errors import AuthenticationExpired, InputError, SinkError, TargetExistsError
from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import VhdFooter
from azrestore.transfer.config import Checksum, TransferConfig
from azrestore.transfer.pipeline import upload_disk
from azrestore.transfer.progress import TransferResult
from tests.support.backoff import BackoffTimes
from tests.support.images import expected_vhd_body, make_sparse_image
from tests.support.pages import page_span
from tests.support.storage import StorageTarget

pytestmark = pytest.mark.anyio
FAST_RETRY: BackoffTimes = {"backoff_base": 0.01, "backoff_max": 0.05}
#: Plain asyncio, and uvloop (the CLI's loop), where a Put Page's headers and body leave
#: in one gathered write.
BOTH_LOOPS = pytest.mark.parametrize(
    "anyio_backend", [("asyncio", {}), ("asyncio", {"use_uvloop": True})], ids=["asyncio", "uvloop"]
)


def awkward_images(tmp_path: Path) -> dict[str, Path]:
    """Sizes that are not multiples of 512 or of a MiB; data at both ends, across chunk
    boundaries, and written zeros inside data."""
    size_a = 13 * MiB + 1234
    size_b = 5 * MiB + 512
    return {
        "ends": make_sparse_image(
            tmp_path / "ends.raw", size_a, [(0, b"\x01"), (size_a - 1, b"\xfe")]
        ),
        "straddle": make_sparse_image(
            tmp_path / "straddle.raw",
            size_a,
            [
                (4 * MiB - 3000, os.urandom(6000)),
                (8 * MiB - 1, os.urandom(2)),
                (9 * MiB, os.urandom(MiB) + bytes(MiB) + os.urandom(700)),
            ],
        ),
        "dense-with-zeros": make_sparse_image(
            tmp_path / "dense.raw",
            size_b,
            [
                (
                    0,
                    os.urandom(2 * MiB)
                    + bytes(512 * 1024)
                    + os.urandom(size_b - 2 * MiB - 512 * 1024),
                )
            ],
        ),
    }


def check_blob(storage: StorageTarget, name: str, image: Path, result: TransferResult) -> bytes:
    body = expected_vhd_body(image)
    client = storage.blob_client(name)
    blob = client.download_blob().readall()
    assert len(blob) == len(body) + 512
    assert blob[: len(body)] == body, "blob differs from image + padding"
    assert VhdFooter.parse(blob[-512:]).current_size == len(body)
    ranges = [page_span(r) for r in client.list_page_ranges() if not r.cleared]
    # Azurite does not merge adjacent ranges, so the ranges add up to what was written.
    assert sum(end - start for start, end in ranges) == result.stats.bytes_uploaded
    for start, end in ranges:
        assert any(blob[start:end]), f"an all-zero range was sent: {start}-{end}"
    stats = result.stats
    assert stats.bytes_uploaded + stats.bytes_skipped == stats.blob_size == len(blob)
    return blob


@BOTH_LOOPS
@pytest.mark.parametrize("checksum", list(Checksum))
async def test_awkward_images_upload_identical(
    storage: StorageTarget, tmp_path: Path, checksum: Checksum
) -> None:
    for name, image in awkward_images(tmp_path).items():
        blob_name = f"{name}.vhd"
        config = TransferConfig(chunk_size=2 * MiB, checksum=checksum)
        async with open_page_blob(storage.sas_url(blob_name), checksum=checksum) as sink:
            result = await upload_disk(image, sink, config=config)
        check_blob(storage, blob_name, image, result)
        assert "sig=" not in result.target and result.target.endswith(blob_name)


async def test_connection_string_and_qemu_reads_the_blob(
    storage: StorageTarget, tmp_path: Path
) -> None:
    image = make_sparse_image(
        tmp_path / "disk.raw", 3 * MiB + 100, [(0, b"MBR"), (2 * MiB, os.urandom(5000))]
    )
    async with open_page_blob(
        storage.blob_url("cs.vhd"), connection_string=storage.connection_string
    ) as sink:
        result = await upload_disk(image, sink)
    blob = check_blob(storage, "cs.vhd", image, result)
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img not installed")
    downloaded = tmp_path / "downloaded.vhd"
    downloaded.write_bytes(blob)
    info, compare = await anyio.to_thread.run_sync(qemu_read, image, downloaded)
    assert info["virtual-size"] == 4 * MiB
    assert compare.returncode == 0, compare.stdout + compare.stderr


def qemu_read(image: Path, vhd: Path) -> tuple[dict[str, int], subprocess.CompletedProcess[str]]:
    """qemu-img's view of a VHD: its info, and its comparison with the raw image."""
    info = subprocess.run(
        ["qemu-img", "info", "-f", "vpc", "--output=json", str(vhd)],
        check=True,
        capture_output=True,
        text=True,
    )
    compare = subprocess.run(
        ["qemu-img", "compare", "-f", "raw", str(image), "-F", "vpc", str(vhd)],
        capture_output=True,
        text=True,
    )
    return json.loads(info.stdout), compare


async def test_existing_blob_needs_overwrite(storage: StorageTarget, tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", MiB, [(0, b"first")])
    url = storage.sas_url("exists.vhd")
    async with open_page_blob(url) as sink:
        await upload_disk(image, sink)
    second = make_sparse_image(tmp_path / "second.raw", 2 * MiB, [(MiB, b"second")])
    with pytest.raises(TargetExistsError, match="already exists"):
        async with open_page_blob(url) as sink:
            await upload_disk(second, sink)
    assert storage.blob_client("exists.vhd").get_blob_properties().size == MiB + 512
    async with open_page_blob(url, overwrite=True) as sink:
        result = await upload_disk(second, sink)
    check_blob(storage, "exists.vhd", second, result)


async def test_existing_page_blob_of_exact_size(storage: StorageTarget, tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 2 * MiB, [(12345, os.urandom(100))])
    storage.blob_client("upload.vhd").create_page_blob(2 * MiB + 512)
    async with open_page_blob(storage.sas_url("upload.vhd"), existing=True) as sink:
        result = await upload_disk(image, sink)
    check_blob(storage, "upload.vhd", image, result)
    storage.blob_client("wrong.vhd").create_page_blob(4 * MiB + 512)
    with pytest.raises(InputError, match="exactly 2097664 bytes"):
        async with open_page_blob(storage.sas_url("wrong.vhd"), existing=True) as sink:
            await upload_disk(image, sink)


async def test_empty_image_refused_and_nothing_created(
    storage: StorageTarget, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.raw"
    empty.touch()
    with pytest.raises(InputError, match="is empty"):
        async with open_page_blob(storage.sas_url("empty.vhd")) as sink:
            await upload_disk(empty, sink)
    assert not storage.blob_client("empty.vhd").exists()


@BOTH_LOOPS
async def test_transient_faults_are_survived(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path
) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 24 * MiB, [(0, os.urandom(24 * MiB))])
    gateway.set_rules(
        [
            FaultRule(operation="PutPage", action="status", status=503, retry_after=1, nth=2),
            FaultRule(operation="PutPage", action="status", status=500, nth=4),
            FaultRule(operation="PutPage", action="reset", nth=6),
            FaultRule(operation="PutPage", action="status", status=429, nth=8),
            FaultRule(operation="PutPage", action="reset", rate=0.1, seed=3, times=3),
        ]
    )
    config = TransferConfig(concurrency=4, chunk_size=MiB, **FAST_RETRY)
    async with open_page_blob(storage.sas_url("faults.vhd")) as sink:
        result = await upload_disk(image, sink, config=config)
    check_blob(storage, "faults.vhd", image, result)
    seen = gateway.statistics()
    fired = seen.faults_by_action
    assert fired.get("status", 0) == 3 and fired.get("reset", 0) >= 2
    # Every failed attempt was sent again. aiohttp itself resends an idempotent PUT once
    # when a reused connection drops, so resets are not all counted as our retries.
    assert seen.requests["PutPage"] == result.stats.requests + sum(fired.values())
    assert 3 <= result.stats.retries <= sum(fired.values())


async def test_fatal_answers_stop_at_once(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path
) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 8 * MiB, [(0, os.urandom(8 * MiB))])
    gateway.set_rules(
        [
            FaultRule(
                operation="PutPage",
                action="status",
                status=403,
                code="AuthorizationPermissionMismatch",
                nth=1,
            )
        ]
    )
    config = TransferConfig(concurrency=1, **FAST_RETRY)
    with pytest.raises(SinkError, match="403 AuthorizationPermissionMismatch") as caught:
        async with open_page_blob(storage.sas_url("fatal.vhd")) as sink:
            await upload_disk(image, sink, config=config)
    assert not caught.value.retryable
    assert gateway.statistics().requests.get("PutPage") == 1
    assert "sig=" not in str(caught.value).replace("sig=REDACTED", "")


async def test_expired_sas_is_reported_as_such(storage: StorageTarget, tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", MiB, [(0, b"x")])
    storage.blob_client("expired.vhd").create_page_blob(MiB + 512)
    url = storage.sas_url("expired.vhd", expiry=timedelta(seconds=-60))
    with pytest.raises(AuthenticationExpired, match="SAS may have expired") as caught:
        async with open_page_blob(url, existing=True) as sink:
            await upload_disk(image, sink)
    assert "sig=REDACTED" in str(caught.value) or "sig=" not in str(caught.value)
