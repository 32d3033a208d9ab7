"""Uploads with automatic concurrency through the strict gateway's throttled link: they end
byte-identical with every 503 counted as a retry, report their in-flight limit, and tell
a blob's throttling (that disk backs off alone) from the account's (the run backs off).

Checked on the gateway's counters and the budget's state, never on wall time."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from azrestore.azure.pageblob import open_blob_session, open_page_blob
from azrestore.emulator.storage import GatewayThread, LinkModel, NetworkModel, Targets
from azrestore.formats.sizes import MiB
from azrestore.transfer.budget import TransferBudget
from azrestore.transfer.config import TransferConfig
from azrestore.transfer.pipeline import upload_disk
from azrestore.transfer.progress import ProgressEvent
from azrestore.transfer.scheduler import UploadJob, upload_many
from tests.support.images import expected_vhd_body, make_sparse_image

if TYPE_CHECKING:
    from tests.support.storage import StorageTarget

pytestmark = pytest.mark.anyio

RETRY = {"max_attempts": 40, "backoff_base": 0.05, "backoff_max": 1.0}


def check_blob(storage: StorageTarget, name: str, image: Path) -> None:
    blob = storage.blob_client(name).download_blob().readall()
    body = expected_vhd_body(image)
    assert blob[: len(body)] == body and len(blob) == len(body) + 512


async def test_auto_concurrency_through_a_throttled_link(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path
) -> None:
    # 12 MiB of data in 1 MiB chunks: 12 requests at once would be over a blob that takes
    # 40 a second in bursts of 4.
    image = make_sparse_image(tmp_path / "disk.raw", 12 * MiB, [(0, os.urandom(12 * MiB))])
    gateway.set_network(
        NetworkModel(
            link=LinkModel(rtt=0.01, jitter=0.002, seed=2),
            blob_targets=Targets(requests=40, burst=0.1),
        )
    )
    config = TransferConfig(chunk_size=MiB, **RETRY)  # type: ignore[arg-type]
    assert config.concurrency is None
    budget = TransferBudget.from_config(config)
    events: list[ProgressEvent] = []
    async with open_page_blob(storage.sas_url("auto.vhd")) as sink:
        result = await upload_disk(
            image, sink, config=config, budget=budget, on_progress=events.append
        )
    check_blob(storage, "auto.vhd", image)
    stats = gateway.statistics()
    throttled = sum(stats.throttled.values())
    assert throttled > 0 and result.stats.retries == throttled
    assert stats.requests["PutPage"] == result.stats.requests + throttled
    # The limit in force is reported with every event, and the most ever in flight.
    assert result.stats.in_flight_limit == budget.limit >= 1
    assert 1 <= result.stats.in_flight_peak <= config.max_concurrency
    assert all(event.stats.in_flight_limit >= 1 for event in events)
    # The blob's own 503s backed this disk off, not the run's shared limit.
    assert budget.controller.throttles == 0
    assert all(decision.reason != "throttled" for decision in budget.controller.history)


async def test_many_disks_a_blobs_throttling_and_the_accounts(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path
) -> None:
    images = [
        make_sparse_image(tmp_path / f"d{k}.raw", 6 * MiB, [(0, os.urandom(6 * MiB))])
        for k in range(4)
    ]
    config = TransferConfig(chunk_size=MiB, **RETRY)  # type: ignore[arg-type]

    async def run(prefix: str) -> TransferBudget:
        budget = TransferBudget.from_config(config)
        async with open_blob_session(config.slots) as session:
            jobs = [
                UploadJob(
                    image,
                    functools.partial(
                        open_page_blob, storage.sas_url(f"{prefix}{k}.vhd"), session=session
                    ),
                    name=f"{prefix}{k}",
                )
                for k, image in enumerate(images)
            ]
            outcomes = await upload_many(jobs, config=config, budget=budget)
        assert all(outcome.ok for outcome in outcomes), [o.error for o in outcomes]
        for k, image in enumerate(images):
            check_blob(storage, f"{prefix}{k}.vhd", image)
        return budget

    # Each blob's targets: 503s of blobs, the shared limit never lowered for them.
    gateway.set_network(
        NetworkModel(link=LinkModel(rtt=0.005), blob_targets=Targets(requests=20, burst=0.1))
    )
    budget = await run("blob")
    stats = gateway.statistics()
    assert stats.throttled.get("blob-requests", 0) > 0 and stats.throttled_blobs
    assert budget.controller.throttles == 0
    # The account's targets: the run as a whole backs off.
    gateway.reset_statistics()
    gateway.set_network(
        NetworkModel(link=LinkModel(rtt=0.005), account_targets=Targets(requests=60, burst=0.1))
    )
    budget = await run("account")
    assert gateway.statistics().throttled.get("account-requests", 0) > 0
    assert budget.controller.throttles > 0
    assert any(decision.reason == "throttled" for decision in budget.controller.history)
