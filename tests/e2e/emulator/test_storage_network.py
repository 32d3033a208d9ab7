"""The strict gateway's link and scalability targets, driven over HTTP: 503 ServerBusy with
Retry-After beyond a blob's or the account's targets, round trips counted per request, the
link's cap, and an upload through a throttled link that still ends byte-identical.

Every figure is checked on the gateway's own counters, never on wall time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
import pytest

from azrestore.azure.pageblob import open_page_blob
from azrestore.emulator.storage import GatewayThread, LinkModel, NetworkModel, Targets
from azrestore.formats.sizes import MiB
from azrestore.transfer.config import TransferConfig
from azrestore.transfer.pipeline import upload_disk
from tests.support.images import expected_vhd_body, make_sparse_image
from tests.support.pages import VERSION, assert_azure_error, page_blob, put_page, written

if TYPE_CHECKING:
    from tests.support.storage import StorageTarget

pytestmark = pytest.mark.anyio


def blob_path(storage: StorageTarget, name: str) -> str:
    return urlsplit(storage.blob_url(name)).path


async def test_blob_request_target_answers_server_busy_with_retry_after(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    page_blob(storage, "busy", MiB)
    page_blob(storage, "calm", MiB)
    # A burst of three requests, then one every 100 s: the fourth and fifth in a row are
    # over (however slow the machine, no token comes back meanwhile).
    gateway.set_network(NetworkModel(blob_targets=Targets(requests=0.01, burst=300)))
    url = storage.sas_url("busy")
    results = [await put_page(http, url, bytes([i + 1]) * 512, i * 512) for i in range(5)]
    assert [status for status, _, _ in results] == [201, 201, 201, 503, 503]
    status, headers, body = results[3]
    assert_azure_error(status, headers, body, 503, "ServerBusy")
    assert b"The server is currently unable to receive requests." in body
    # Whole seconds, rounded up, as HTTP has it; the exact wait in milliseconds beside.
    wait_ms = int(headers["x-ms-retry-after-ms"])
    assert 90_000 < wait_ms <= 100_000
    assert int(headers["Retry-After"]) == -(-wait_ms // 1000)
    # Another blob has its own targets.
    assert (await put_page(http, storage.sas_url("calm"), b"c" * 512, 0))[0] == 201
    assert written(storage, "busy") == [(0, 3 * 512 - 1)]
    stats = gateway.statistics()
    busy = blob_path(storage, "busy")
    assert stats.throttled == {"blob-requests": 2}
    assert stats.throttled_blobs == {busy: 2}
    assert stats.admitted == {busy: 3, blob_path(storage, "calm"): 1}
    # A throttled request is not forwarded, but its body was read (and counted).
    assert stats.forwarded == {"PutPage": 4}
    assert stats.bytes_received["PutPage"] == 6 * 512


async def test_blob_byte_target(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    page_blob(storage, "bytes", 4 * MiB)
    # 1 MiB of burst, refilled at 1 KiB/s: the third half MiB in a row is over.
    gateway.set_network(NetworkModel(blob_targets=Targets(bytes=1024, burst=1024)))
    url = storage.sas_url("bytes")
    half = MiB // 2
    statuses = [(await put_page(http, url, b"b" * half, i * half))[0] for i in range(3)]
    assert statuses == [201, 201, 503]
    assert gateway.statistics().throttled == {"blob-bytes": 1}


async def test_account_request_target_spans_blobs(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    for name in ("a", "b", "c"):
        page_blob(storage, name, MiB)
    gateway.set_network(NetworkModel(account_targets=Targets(requests=0.01, burst=200)))
    results = [await put_page(http, storage.sas_url(n), b"x" * 512, 0) for n in ("a", "b", "c")]
    assert [status for status, _, _ in results] == [201, 201, 503]
    assert_azure_error(*results[2], 503, "ServerBusy")
    assert b"Operations per second is over the account limit." in results[2][2]
    stats = gateway.statistics()
    assert stats.throttled == {"account-requests": 1}
    assert stats.throttled_blobs == {}


async def test_rtt_is_counted_per_request(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    page_blob(storage, "rtt", MiB)
    gateway.set_network(NetworkModel(link=LinkModel(rtt=0.02)))
    url = storage.sas_url("rtt")
    for i in range(6):
        assert (await put_page(http, url, b"r" * 512, i * 512))[0] == 201
    async with http.head(url, headers=VERSION) as response:
        assert response.status == 200
    stats = gateway.statistics()
    assert stats.link_delayed == 7 == sum(stats.requests.values())
    assert stats.link_rtt_seconds == pytest.approx(7 * 0.02)
    assert stats.link_paced_bytes == 0  # no cap, nothing paced


async def test_link_cap_paces_bodies(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    page_blob(storage, "cap", 4 * MiB)
    gateway.set_network(NetworkModel(link=LinkModel(rtt=0.001, rate=16 * MiB)))
    url = storage.sas_url("cap")
    for i in range(4):
        assert (await put_page(http, url, os.urandom(MiB), i * MiB))[0] == 201
    stats = gateway.statistics()
    assert stats.link_paced_bytes == 4 * MiB
    # One after the other, each body finds the link idle and holds it 1 MiB / 16 MiB/s.
    assert stats.link_pacing_seconds == pytest.approx(4 / 16, rel=0.01)


async def test_upload_through_a_throttled_link_is_byte_identical(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path
) -> None:
    # 4 MiB of data, then 48 runs of 4 KiB a quarter MiB apart: about 50 requests against a
    # blob that takes 25 a second in bursts of 5, and 8 MiB/s in bursts of 4 MiB.
    runs = [(0, os.urandom(4 * MiB))] + [
        (4 * MiB + k * 256 * 1024, os.urandom(4096)) for k in range(48)
    ]
    image = make_sparse_image(tmp_path / "disk.raw", 16 * MiB + 3072, runs)
    gateway.set_network(
        NetworkModel(
            link=LinkModel(rtt=0.005, jitter=0.002, seed=1),
            blob_targets=Targets(requests=25, bytes=8 * MiB, burst=0.5),
        )
    )
    config = TransferConfig(concurrency=16, max_attempts=30, backoff_base=0.05, backoff_max=1)
    async with open_page_blob(storage.sas_url("throttled.vhd")) as sink:
        result = await upload_disk(image, sink, config=config)
    blob = storage.blob_client("throttled.vhd").download_blob().readall()
    body = expected_vhd_body(image)
    assert blob[: len(body)] == body and len(blob) == len(body) + 512
    stats = gateway.statistics()
    throttled = sum(stats.throttled.values())
    assert throttled > 0 and stats.throttled.get("blob-requests", 0) > 0
    # Every 503 was retried, and counted as a retry.
    assert result.stats.retries == throttled
    assert stats.requests["PutPage"] == result.stats.requests + throttled
    # No request over 4 MiB (the gateway would have refused it 413), nothing refused.
    assert stats.rejections == {}
    assert stats.bytes_received["PutPage"] <= result.stats.bytes_uploaded + throttled * 4 * MiB
    assert stats.link_delayed == sum(stats.requests.values())
