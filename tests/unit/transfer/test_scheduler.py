"""Many disks under one budget: fairness, bounded buffers and requests, failures kept to
their disk, cancellation of all."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

from azrestore.errors import InputError, SinkError
from azrestore.formats.sizes import MiB
from azrestore.transfer.budget import TransferBudget
from azrestore.transfer.config import TransferConfig
from azrestore.transfer.pipeline import upload_disk
from azrestore.transfer.scheduler import UploadJob, upload_many
from tests.support.backoff import BackoffTimes
from tests.support.images import expected_vhd_body, make_sparse_image
from tests.support.memory_sink import MemorySink

FAST_RETRY: BackoffTimes = {"backoff_base": 0.001, "backoff_max": 0.01}


@dataclass
class Meter:
    """Requests in flight across every sink of a run, and the order they completed in."""

    in_flight: int = 0
    peak: int = 0
    completed: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class MeteredSink(MemorySink):
    meter: Meter = field(default_factory=Meter)
    name: str = ""

    async def write(self, offset: int, data: memoryview, digest: bytes | None) -> None:
        self.meter.in_flight += 1
        self.meter.peak = max(self.meter.peak, self.meter.in_flight)
        try:
            await super().write(offset, data, digest)
        finally:
            self.meter.in_flight -= 1
        self.meter.completed.append((self.name, offset))


def dense(tmp_path: Path, name: str, size: int) -> Path:
    return make_sparse_image(tmp_path / name, size, [(0, os.urandom(size))])


def test_small_disk_is_not_starved_by_a_big_one(tmp_path: Path) -> None:
    big = dense(tmp_path, "big.raw", 48 * MiB)
    small = dense(tmp_path, "small.raw", 3 * MiB)
    meter = Meter()
    big_sink = MeteredSink(delay=0.01, meter=meter, name="big")
    small_sink = MeteredSink(delay=0.01, meter=meter, name="small")
    config = TransferConfig(concurrency=4, chunk_size=MiB)
    started: list[int] = []

    async def go() -> TransferBudget:
        budget = TransferBudget.from_config(config)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: upload_disk(big, big_sink, config=config, budget=budget))
            await anyio.sleep(0.05)  # the big disk holds every slot by now, and waits for more
            started.append(len(meter.completed))
            tasks.start_soon(lambda: upload_disk(small, small_sink, config=config, budget=budget))
        return budget

    budget = anyio.run(go)
    assert bytes(big_sink.blob[: 48 * MiB]) == big.read_bytes()
    assert bytes(small_sink.blob[: 3 * MiB]) == small.read_bytes()
    # Slots are handed over in turn, so once the small disk (3 chunks and a footer) asked
    # for slots, it finished within a few rounds while the big one (48 chunks and a footer)
    # still had work left; a greedy scheduler would have let the big disk keep every slot
    # to its end. Counted from when the small disk started, so a slow machine that lets
    # the big disk run further ahead first does not change the verdict.
    order = [name for name, _ in meter.completed]
    small_done = len(order) - order[::-1].index("small")
    assert order[small_done:].count("big") > 0, "the big disk was done before the small one"
    assert order[started[0] : small_done].count("big") <= 4 * config.slots
    # One budget: never more requests in flight or buffers than its concurrency.
    assert meter.peak <= config.slots
    assert budget.pool.peak <= config.slots and budget.pool.allocated <= 4
    assert budget.pool.in_use == 0


def test_upload_many_isolates_failures_and_bounds_buffers(tmp_path: Path) -> None:
    images = [dense(tmp_path, f"d{i}.raw", (i + 1) * MiB + 512) for i in range(12)]
    meter = Meter()
    sinks = [MeteredSink(delay=0.002, meter=meter) for _ in images]
    sinks[3].fail = lambda offset, length, attempt: SinkError("409 lease", retryable=False)
    opened: list[int] = []

    def factory(index: int):  # type: ignore[no-untyped-def]
        @asynccontextmanager
        async def open_sink() -> AsyncIterator[MemorySink]:
            opened.append(index)
            yield sinks[index]

        return open_sink

    jobs = [
        UploadJob(source=image, sink=factory(i), name=f"disk{i}") for i, image in enumerate(images)
    ]
    jobs.append(UploadJob(source=tmp_path / "missing.raw", sink=MemorySink(), name="missing"))
    config = TransferConfig(concurrency=3, chunk_size=MiB, **FAST_RETRY)
    budget_holder: list[TransferBudget] = []

    async def go() -> list[object]:
        budget = TransferBudget.from_config(config)
        budget_holder.append(budget)
        return list(await upload_many(jobs, config=config, budget=budget))

    outcomes = anyio.run(go)
    assert len(outcomes) == len(jobs)
    for index, (outcome, image) in enumerate(zip(outcomes, images, strict=False)):
        assert outcome.job is jobs[index]  # type: ignore[attr-defined]
        if index == 3:
            assert isinstance(outcome.error, SinkError) and outcome.exit_code == 1  # type: ignore[attr-defined]
            continue
        assert outcome.error is None and outcome.ok  # type: ignore[attr-defined]
        assert bytes(sinks[index].blob[: len(expected_vhd_body(image))]) == expected_vhd_body(image)
    missing = outcomes[-1]
    assert isinstance(missing.error, InputError) and missing.exit_code == 2  # type: ignore[attr-defined]
    budget = budget_holder[0]
    assert meter.peak <= 3 and budget.pool.peak <= 3 and budget.pool.allocated <= 3
    assert sorted(opened) == list(range(12))


def test_cancellation_stops_every_disk(tmp_path: Path) -> None:
    images = [dense(tmp_path, f"d{i}.raw", 16 * MiB) for i in range(3)]
    sinks = [MemorySink(delay=0.05) for _ in images]
    jobs = [UploadJob(source=image, sink=sink) for image, sink in zip(images, sinks, strict=True)]
    config = TransferConfig(concurrency=2, chunk_size=MiB)

    async def go() -> None:
        with anyio.move_on_after(0.3):
            await upload_many(jobs, config=config)

    started = time.monotonic()
    anyio.run(go)
    assert time.monotonic() - started < 5
    assert all(len(sink.requests) < 16 for sink in sinks)


def test_budget_refuses_bigger_chunks(tmp_path: Path) -> None:
    image = dense(tmp_path, "d.raw", MiB)

    async def go() -> None:
        budget = TransferBudget(2, 256 * 1024)
        await upload_disk(image, MemorySink(), config=TransferConfig(), budget=budget)

    with pytest.raises(InputError, match="larger than the shared budget"):
        anyio.run(go)


def test_bulk_progress_draws_each_disk_and_the_total() -> None:
    import io

    from rich.console import Console

    from azrestore.cli.progress import BulkProgress
    from azrestore.transfer.progress import EventKind, ProgressEvent, TransferStats

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    with BulkProgress(console, ["web-os", "db-data"]) as progress:
        assert progress.live
        for index, done in ((0, 2 * MiB), (1, 6 * MiB)):
            stats = TransferStats(
                disk_size=8 * MiB,
                virtual_size=8 * MiB,
                blob_size=8 * MiB + 512,
                bytes_uploaded=done // 2,
                bytes_skipped=done // 2,
                seconds=1.0,
            )
            progress.callback(index)(ProgressEvent(EventKind.WRITTEN, stats))
    output = screen.getvalue()
    assert "web-os" in output and "db-data" in output and "total" in output
    assert "8.0/16.0 MiB" in output  # 2 + 6 MiB of the two disks' 8 MiB + 512 each
    quiet = io.StringIO()
    with BulkProgress(Console(file=quiet, force_terminal=False), ["a"]) as progress:
        assert not progress.live
    assert quiet.getvalue() == ""
