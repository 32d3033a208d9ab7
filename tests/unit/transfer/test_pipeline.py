"""The upload pipeline against an in-memory sink that enforces Put Page's rules."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import anyio
import pytest
import uvloop
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from azrestore.errors import InputError, SinkError, TransferError
from azrestore.formats.containers import detect_container
from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import VhdFooter
from azrestore.transfer.config import TransferConfig
from azrestore.transfer.pipeline import upload_disk
from azrestore.transfer.progress import EventKind, ProgressEvent
from tests.support.backoff import BackoffTimes
from tests.support.images import expected_vhd_body, make_sparse_image
from tests.support.memory_sink import MemorySink

FAST_RETRY: BackoffTimes = {"backoff_base": 0.001, "backoff_max": 0.01}


def check_upload(image: Path, sink: MemorySink, events: list[ProgressEvent]) -> None:
    body = expected_vhd_body(image)
    blob = bytes(sink.blob)
    assert len(blob) == len(body) + 512
    assert blob[: len(body)] == body
    footer = VhdFooter.parse(blob[-512:])
    assert footer.current_size == len(body)
    # The footer is the last request, and no request is all zeros.
    assert sink.requests[-1].offset == len(body)
    for request in sink.requests[:-1]:
        assert any(blob[request.offset : request.offset + request.length])
    final = events[-1].stats
    assert events[-1].kind is EventKind.FINISHED
    assert final.bytes_uploaded + final.bytes_skipped == final.blob_size
    assert final.bytes_uploaded == sum(r.length for r in sink.requests)
    written = sum(e.length for e in events if e.kind is EventKind.WRITTEN)
    assert written == final.bytes_uploaded


chunk_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=12 * MiB),
        st.binary(min_size=1, max_size=9000),
        st.booleans(),
    ),
    max_size=8,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    size=st.integers(min_value=1, max_value=13 * MiB),
    chunks=chunk_strategy,
    chunk_size=st.sampled_from([64 * 1024, 1 * MiB, 4 * MiB]),
    merge_gap=st.sampled_from([0, 4096, 64 * 1024]),
)
@example(size=4, chunks=[(0, b"QFI\xfb", False)], chunk_size=64 * 1024, merge_gap=0)
@example(size=4096, chunks=[(0, b"KDMV", False)], chunk_size=64 * 1024, merge_gap=0)
def test_blob_equals_image_padding_and_footer(
    tmp_path: Path,
    size: int,
    chunks: list[tuple[int, bytes, bool]],
    chunk_size: int,
    merge_gap: int,
) -> None:
    placed = []
    for offset, data, zeros in chunks:
        offset %= size
        data = data[: size - offset]
        placed.append((offset, bytes(len(data)) if zeros else data))
    image = make_sparse_image(tmp_path / "disk.raw", size, placed)
    sink = MemorySink()
    events: list[ProgressEvent] = []
    config = TransferConfig(chunk_size=chunk_size, merge_gap=merge_gap, concurrency=4)
    data = image.read_bytes()
    if detect_container(data[: 64 * 1024], data[-512:]) is not None:
        # Hypothesis draws constants from our source, container signatures among them:
        # such an image is read as that format, whose checks refuse it (one line) before
        # anything is created.
        with pytest.raises(InputError):
            anyio.run(lambda: upload_disk(image, sink, config=config))
        assert sink.prepared_size is None and sink.requests == []
        return
    anyio.run(lambda: upload_disk(image, sink, config=config, on_progress=events.append))
    check_upload(image, sink, events)


def test_awkward_image_edges(tmp_path: Path) -> None:
    """Data at the first and last byte, across chunk boundaries, and written zeros."""
    size = 9 * MiB + 777
    image = make_sparse_image(
        tmp_path / "disk.raw",
        size,
        [
            (0, b"\x01"),
            (4 * MiB - 100, os.urandom(200)),
            (5 * MiB, bytes(2 * MiB)),
            (7 * MiB + 3, os.urandom(5000)),
            (size - 1, b"\xff"),
        ],
    )
    sink = MemorySink()
    events: list[ProgressEvent] = []
    result = anyio.run(lambda: upload_disk(image, sink, on_progress=events.append))
    check_upload(image, sink, events)
    assert result.stats.disk_size == size
    assert result.stats.virtual_size == 10 * MiB
    # The 2 MiB of written zeros were read but not sent.
    assert result.stats.bytes_uploaded < 64 * 1024
    assert result.stats.bytes_read >= 2 * MiB


def test_memory_bounded_by_concurrency(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 40 * MiB, [(0, os.urandom(40 * MiB))])
    sink = MemorySink(delay=0.005)
    config = TransferConfig(concurrency=3, chunk_size=1 * MiB)
    anyio.run(lambda: upload_disk(image, sink, config=config))
    assert 1 <= sink.peak_in_flight <= 3
    assert len(sink.requests) == 41


def test_transient_errors_are_retried(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 8 * MiB, [(0, os.urandom(8 * MiB))])

    def fail(offset: int, length: int, attempt: int) -> SinkError | None:
        if attempt <= 2 and offset in (0, 4 * MiB):
            return SinkError("503 ServerBusy", retryable=True, status=503, retry_after=0.01)
        return None

    sink = MemorySink(fail=fail)
    events: list[ProgressEvent] = []
    config = TransferConfig(**FAST_RETRY)
    result = anyio.run(lambda: upload_disk(image, sink, config=config, on_progress=events.append))
    check_upload(image, sink, events)
    assert result.stats.retries == 4
    assert result.stats.bytes_retried == 4 * 4 * MiB
    assert sum(1 for e in events if e.kind is EventKind.RETRY) == 4


def test_retries_run_out(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", MiB, [(0, b"x")])
    sink = MemorySink(fail=lambda o, n, a: SinkError("500 InternalError", retryable=True))
    config = TransferConfig(max_attempts=3, **FAST_RETRY)
    with pytest.raises(TransferError, match="failed after 3 attempts: 500 InternalError"):
        anyio.run(lambda: upload_disk(image, sink, config=config))
    assert sink.attempts[0] == 3


def test_fatal_error_stops_at_once(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 64 * MiB, [(0, os.urandom(64 * MiB))])

    def fail(offset: int, length: int, attempt: int) -> SinkError | None:
        if offset == 8 * MiB:
            return SinkError("403 AuthorizationPermissionMismatch", retryable=False, status=403)
        return None

    sink = MemorySink(fail=fail, delay=0.01)
    config = TransferConfig(concurrency=2, **FAST_RETRY)
    with pytest.raises(SinkError, match="AuthorizationPermissionMismatch"):
        anyio.run(lambda: upload_disk(image, sink, config=config))
    assert sink.attempts[8 * MiB] == 1
    # Siblings were cancelled: far from all chunks were sent, and never the footer.
    assert len(sink.requests) < 8
    assert all(r.offset < 64 * MiB for r in sink.requests)


def test_bad_images_are_refused_before_the_sink_is_touched(tmp_path: Path) -> None:
    sink = MemorySink()
    empty = tmp_path / "empty.raw"
    empty.touch()
    for path, message in [
        (tmp_path / "missing.raw", "no such file"),
        (tmp_path, "is a directory"),
        (empty, "is empty"),
    ]:
        with pytest.raises(InputError, match=message):
            anyio.run(lambda p=path: upload_disk(p, sink))  # type: ignore[misc]
    assert sink.prepared_size is None


@pytest.mark.parametrize("runner", ["asyncio", "uvloop", "anyio"])
def test_runs_under_each_event_loop(tmp_path: Path, runner: str) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 3 * MiB, [(MiB, os.urandom(MiB))])
    sink = MemorySink()

    async def go() -> None:
        await upload_disk(image, sink)

    if runner == "asyncio":
        asyncio.run(go())
    elif runner == "uvloop":
        uvloop.run(go())
    else:
        anyio.run(go)
    assert bytes(sink.blob[: 3 * MiB]) == image.read_bytes()


def test_config_validation() -> None:
    for bad in (
        {"concurrency": 0},
        {"chunk_size": 5 * MiB},
        {"chunk_size": 1000},
        {"zero_block": 100},
        {"max_bandwidth": 0},
        {"checksum": "sha1"},
    ):
        with pytest.raises((InputError, ValueError)):
            TransferConfig(**bad)
