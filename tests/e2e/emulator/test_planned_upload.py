"""An upload of scattered small runs through a distant, throttled link: the request
planner joins runs over short holes into far fewer requests, and the blob still ends
byte-identical, every 503 retried and counted, no request over 4 MiB.

Figures are checked on the gateway's and the upload's own counters, never on wall time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from azrestore.azure.pageblob import open_page_blob
from azrestore.emulator.storage import GatewayThread, LinkModel, NetworkModel, Targets
from azrestore.formats.sizes import KiB, MiB
from azrestore.transfer.config import TransferConfig
from azrestore.transfer.pipeline import upload_disk
from tests.support.images import expected_vhd_body, make_sparse_image

if TYPE_CHECKING:
    from tests.support.storage import StorageTarget

pytestmark = pytest.mark.anyio

RUNS = 256


async def test_scattered_runs_through_a_distant_throttled_link(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path
) -> None:
    # 256 runs of 4 KiB, 64 KiB apart (holes of 60 KiB, each run an extent of its own):
    # the 64 KiB rule sends each as a request; through 30 ms with 16 in flight a request
    # costs about 2 ms, the worth of 110 KiB of zeros at a blob's 60 MiB/s.
    runs = [(k * 64 * KiB, os.urandom(4 * KiB)) for k in range(RUNS)]
    image = make_sparse_image(tmp_path / "aged.raw", 16 * MiB + 3072, runs)
    gateway.set_network(
        NetworkModel(
            link=LinkModel(rtt=0.030, jitter=0.003, seed=2),
            blob_targets=Targets(requests=100, bytes=16 * MiB, burst=0.2),
        )
    )
    config = TransferConfig(concurrency=16, max_attempts=40, backoff_base=0.05, backoff_max=1)
    async with open_page_blob(storage.sas_url("planned.vhd")) as sink:
        result = await upload_disk(image, sink, config=config)
    blob = storage.blob_client("planned.vhd").download_blob().readall()
    body = expected_vhd_body(image)
    assert blob[: len(body)] == body and len(blob) == len(body) + 512
    stats = gateway.statistics()
    throttled = sum(stats.throttled.values())
    assert throttled > 0
    assert result.stats.retries == throttled
    assert stats.requests["PutPage"] == result.stats.requests + throttled
    # No request over 4 MiB (the gateway would have refused it 413), nothing refused.
    assert stats.rejections == {}
    # Far fewer requests than runs (plus the footer), some zeros of the holes sent.
    assert result.stats.requests < RUNS * 3 // 4
    assert result.stats.bytes_uploaded > RUNS * 4 * KiB + 512
