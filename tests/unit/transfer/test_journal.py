"""Resume journals: the record format, torn and damaged tails, locking, and resuming an
interrupted upload into an in-memory sink (what is sent again, what is refused)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.errors import SinkError
from azrestore.formats.sizes import MiB
from azrestore.transfer.config import TransferConfig
from azrestore.transfer.identity import SourceIdentity
from azrestore.transfer.journal import (
    RECORD_SIZE,
    Journal,
    JournalError,
    JournalHeader,
    journal_path,
    merge_ranges,
)
from azrestore.transfer.pipeline import _Gaps, subtract_ranges, upload_disk
from azrestore.transfer.progress import EventKind, ProgressEvent
from azrestore.transfer.resume import ResumeOptions, ResumeRefused
from azrestore.transfer.sink import TargetIdentity
from tests.support.backoff import BackoffTimes
from tests.support.images import expected_vhd_body, make_sparse_image
from tests.support.memory_sink import MemorySink

FAST_RETRY: BackoffTimes = {"backoff_base": 0.001, "backoff_max": 0.01}


def header(size: int = 8 * MiB) -> JournalHeader:
    source = SourceIdentity("/disk.raw", size, 1, 2, 3, "ab" * 32)
    return JournalHeader(source, TargetIdentity("http://x/c/b", size + 512, "t0"), size)


# -- the file format ----------------------------------------------------------------------


def test_records_survive_reopen_and_merge(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = Journal.create(path, header())
    for offset in (4 * MiB, 0, 2 * MiB, 6 * MiB):
        journal.record(offset, 2 * MiB if offset != 6 * MiB else MiB)
    journal.close()
    assert path.stat().st_size == len(path.read_bytes().split(b"\n")[0]) + 1 + 4 * RECORD_SIZE
    again = Journal.load(path)
    assert again.done == [(0, 7 * MiB)]
    assert again.header == header() or again.header.source == header().source
    assert not again.complete
    again.close()


@pytest.mark.parametrize(
    "damage",
    [
        "half",  # a torn append (SIGKILL mid-write, or power loss)
        "zeros",  # a file system showing zeros after a crash
        "garbage",
        "bad-crc",
    ],
)
def test_a_torn_or_damaged_tail_is_dropped(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "j.journal"
    journal = Journal.create(path, header())
    journal.record(0, MiB)
    journal.record(MiB, MiB)
    journal.close()
    intact = path.stat().st_size
    with open(path, "ab") as handle:
        if damage == "half":
            handle.write(b"W 0000000000200000 00000000001")
        elif damage == "zeros":
            handle.write(bytes(RECORD_SIZE * 2))
        elif damage == "garbage":
            handle.write(os.urandom(RECORD_SIZE + 7))
        else:
            handle.write(b"W 0000000000200000 0000000000100000 00000000\n")
    loaded = Journal.load(path)
    assert loaded.done == [(0, 2 * MiB)]
    assert path.stat().st_size == intact  # cut where the damage began
    loaded.record(2 * MiB, MiB)  # appends after the intact records
    loaded.close()
    assert Journal.load(path).done == [(0, 3 * MiB)]


def test_records_after_a_damaged_one_are_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = Journal.create(path, header())
    for index in range(4):
        journal.record(index * MiB, MiB)
    journal.close()
    data = bytearray(path.read_bytes())
    second = data.index(b"\n") + 1 + RECORD_SIZE
    data[second + 5] ^= 0x01  # flip a bit of the second record
    path.write_bytes(bytes(data))
    assert Journal.load(path).done == [(0, MiB)]


def test_damaged_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    path.write_bytes(b'{"format": "azrestore-journal", "vers')
    with pytest.raises(JournalError, match=r"damaged journal.*--restart"):
        Journal.load(path)


def test_complete_journal_is_compacted(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    journal = Journal.create(path, header())
    for index in range(100):
        journal.record(index * 4096, 4096)
    journal.mark_complete(8 * MiB + 512)
    journal.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2 and lines[1].startswith(b"C ")
    assert Journal.load(path).complete


def test_one_run_per_target(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    first = Journal.create(path, header())
    with pytest.raises(JournalError, match="another azrestore"):
        Journal.load(path)
    first.close()
    Journal.load(path).close()


def test_journal_names(tmp_path: Path) -> None:
    url = "https://acct.blob.core.windows.net/c/disk.vhd"
    name = journal_path(tmp_path, url).name
    assert name.endswith(".journal") and "disk" not in name and len(name) == 48
    assert journal_path(tmp_path, url) == journal_path(tmp_path, url)
    assert journal_path(tmp_path, url) != journal_path(tmp_path, url + "2")


def test_no_secret_in_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.journal"
    secret = TargetIdentity("https://a.blob.core.windows.net/c/b?sv=1&sig=SECRET", 512, None)
    Journal.create(path, JournalHeader(header().source, secret, 0)).close()
    assert b"SECRET" not in path.read_bytes()


# -- range arithmetic ---------------------------------------------------------------------

sectors = st.integers(min_value=0, max_value=200).map(lambda n: n * 512)


@settings(max_examples=200, deadline=None)
@given(
    extents=st.lists(st.tuples(st.integers(0, 100_000), st.integers(1, 20_000)), max_size=8),
    done=st.lists(st.tuples(sectors, sectors), max_size=6),
)
def test_subtract_ranges_and_gaps(
    extents: list[tuple[int, int]], done: list[tuple[int, int]]
) -> None:
    limit = 102_400
    extents.sort()
    merged = merge_ranges((min(a, b), max(a, b)) for a, b in done)
    left = subtract_ranges(extents, merged, limit)

    def cover(ranges: list[tuple[int, int]]) -> set[int]:
        return {s for a, b in ranges for s in range(a // 512, -(-b // 512))}

    wanted = cover([(o, min(o + n, limit)) for o, n in extents]) - cover(merged)
    assert cover([(o, o + n) for o, n in left]) == wanted
    assert all(o % 512 == 0 and n % 512 == 0 and n > 0 for o, n in left)
    gaps = _Gaps(merged)
    assert gaps.free(0, limit) == limit - sum(min(b, limit) - a for a, b in merged if a < limit)


# -- resuming into a memory sink ------------------------------------------------------------


@dataclass
class ResumableSink(MemorySink):
    """A MemorySink that can be interrupted, and knows its identity (re-created on prepare)."""

    stop_after: int | None = None
    generation: int = 0
    sent: list[tuple[int, int]] = field(default_factory=list)

    @property
    def target_key(self) -> str:
        return "memory://blob"

    async def prepare(self, size: int) -> None:
        await super().prepare(size)
        self.generation += 1

    async def identity(self) -> TargetIdentity | None:
        if self.prepared_size is None:
            return None
        return TargetIdentity("memory://blob", self.prepared_size, str(self.generation))

    async def write(self, offset: int, data: memoryview, digest: bytes | None) -> None:
        if self.stop_after is not None and len(self.sent) >= self.stop_after:
            raise SinkError("403 stop here", retryable=False, status=403)
        await super().write(offset, data, digest)
        self.sent.append((offset, len(data)))


def run_upload(
    image: Path, sink: ResumableSink, options: ResumeOptions, config: TransferConfig
) -> list[ProgressEvent]:
    events: list[ProgressEvent] = []

    async def go() -> None:
        await upload_disk(image, sink, config=config, on_progress=events.append, resume=options)

    anyio.run(go)
    return events


def test_interrupted_upload_continues_where_it_stopped(tmp_path: Path) -> None:
    size = 24 * MiB + 1024
    data = [(MiB * i + 4096 * i, os.urandom(300_000)) for i in range(0, 24, 2)]
    image = make_sparse_image(tmp_path / "disk.raw", size, [*data, (size - 5, b"tail!")])
    options = ResumeOptions(directory=tmp_path / "journals")
    config = TransferConfig(concurrency=3, chunk_size=MiB, **FAST_RETRY)
    sink = ResumableSink(stop_after=5, delay=0.001)
    with pytest.raises(SinkError, match="stop here"):
        run_upload(image, sink, options, config)
    first = list(sink.sent)
    sink.stop_after = None
    sink.sent.clear()
    events = run_upload(image, sink, options, config)
    final = events[-1].stats
    assert bytes(sink.blob[: virtual(size)]) == expected_vhd_body(image)
    assert sink.requests[-1].offset == virtual(size)  # the footer last
    # Nothing acknowledged in the first run was sent again, except inside windows that
    # were still in flight when it stopped (at most concurrency of them).
    again = set(first) & set(sink.sent)
    assert len(again) <= config.slots
    assert final.bytes_resumed > 0
    assert final.bytes_uploaded + final.bytes_skipped + final.bytes_resumed == final.blob_size
    assert sum(e.length for e in events if e.kind is EventKind.RESUMED) == final.bytes_resumed
    # The recorded windows were not even read again.
    assert final.bytes_read < sum(len(chunk) for _, chunk in data) + MiB * config.slots
    # A third run has nothing to do.
    sink.sent.clear()
    events = run_upload(image, sink, options, config)
    assert sink.sent == [] and events[-1].stats.bytes_resumed == events[-1].stats.blob_size


def virtual(size: int) -> int:
    return -(-size // MiB) * MiB


def test_changed_source_or_target_is_refused(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 8 * MiB, [(0, os.urandom(8 * MiB))])
    options = ResumeOptions(directory=tmp_path / "journals")
    config = TransferConfig(concurrency=2, chunk_size=MiB, **FAST_RETRY)
    sink = ResumableSink(stop_after=2)
    with pytest.raises(SinkError):
        run_upload(image, sink, options, config)
    sink.stop_after = None
    # The source changed (same size, new content and mtime).
    with open(image, "r+b") as handle:
        handle.write(os.urandom(4096))
    with pytest.raises(ResumeRefused, match=r"source .*modified.*--restart"):
        run_upload(image, sink, options, config)
    # --restart starts over and succeeds.
    sent_before = len(sink.sent)
    run_upload(image, sink, ResumeOptions(directory=options.directory, restart=True), config)
    assert bytes(sink.blob[: 8 * MiB]) == image.read_bytes()
    assert len(sink.sent) - sent_before == 9  # every chunk and the footer
    # A finished upload into a re-created target: the journal no longer fits; the target
    # is uploaded anew rather than refused.
    sink.generation += 1
    sink.sent.clear()
    run_upload(image, sink, options, config)
    assert len(sink.sent) == 9


def test_recreated_target_of_an_unfinished_upload_is_refused(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 8 * MiB, [(0, os.urandom(8 * MiB))])
    options = ResumeOptions(directory=tmp_path / "journals")
    config = TransferConfig(concurrency=2, chunk_size=MiB, **FAST_RETRY)
    sink = ResumableSink(stop_after=3)
    with pytest.raises(SinkError):
        run_upload(image, sink, options, config)
    sink.stop_after = None
    sink.generation += 1  # somebody deleted and re-created the blob
    with pytest.raises(ResumeRefused, match="target was re-created"):
        run_upload(image, sink, options, config)


def test_unusable_journal_dir_fails_before_the_target_is_touched(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", MiB, [(0, b"x")])
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    sink = ResumableSink()
    with pytest.raises(JournalError, match="cannot keep resume journals"):
        run_upload(image, sink, ResumeOptions(directory=blocker / "j"), TransferConfig())
    assert sink.prepared_size is None


@dataclass
class ExistingSink(ResumableSink):
    """A target that exists before the upload (a managed disk's upload URL): prepare keeps
    its pages, so starting over must clear what the interrupted run wrote."""

    fresh: bool = False
    cleared: list[tuple[int, int]] = field(default_factory=list)

    async def prepare(self, size: int) -> None:
        if self.prepared_size is None:
            await super().prepare(size)

    async def clear(self, offset: int, length: int) -> None:
        self.blob[offset : offset + length] = bytes(length)
        self.cleared.append((offset, length))


def test_restart_on_an_existing_target_clears_the_old_pages(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 8 * MiB, [(0, os.urandom(8 * MiB))])
    options = ResumeOptions(directory=tmp_path / "journals")
    config = TransferConfig(concurrency=1, chunk_size=MiB, **FAST_RETRY)
    sink = ExistingSink(stop_after=4)
    with pytest.raises(SinkError):
        run_upload(image, sink, options, config)
    sink.stop_after = None
    # The new source has zeros (a hole) where the old one had data.
    make_sparse_image(image, 8 * MiB, [(6 * MiB, os.urandom(MiB))])
    run_upload(image, sink, ResumeOptions(directory=options.directory, restart=True), config)
    assert sink.cleared and sum(length for _, length in sink.cleared) >= 3 * MiB
    assert bytes(sink.blob[: 8 * MiB]) == image.read_bytes()


# -- journals that lie (issue 17) -----------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"[1, 2]",
        b'"a string"',
        b"42",
        b"null",
        b'{"format": "azrestore-journal", "version": 1, '
        b'"source": [], "target": {}, "virtual_size": 1}',
    ],
)
def test_header_that_is_json_but_not_a_journal_is_damaged(tmp_path: Path, line: bytes) -> None:
    path = tmp_path / "j.journal"
    path.write_bytes(line + b"\n")
    with pytest.raises(JournalError, match=r"damaged journal.*--restart"):
        Journal.load(path)


def _append_record(path: Path, kind: bytes, offset: int, length: int) -> None:
    import zlib

    body = b"%s %016x %016x" % (kind, offset, length)
    with open(path, "ab") as handle:
        handle.write(body + b" %08x\n" % zlib.crc32(body))


@pytest.mark.parametrize(
    ("offset", "length"),
    [
        (0, 0xFFFFFFFFFFFFF000),  # "resumed: 16777216.0 TiB"
        (8 * MiB, MiB),  # past the disk's virtual size
        (7 * MiB, 2 * MiB),  # runs over its end
        (0xFFFFFFFFFFFFFE00, 512),
        (100, 512),  # not on a sector boundary
        (0, 0),  # an empty range
    ],
)
def test_records_outside_the_target_make_a_damaged_journal(
    tmp_path: Path, offset: int, length: int
) -> None:
    path = tmp_path / "j.journal"
    journal = Journal.create(path, header())
    journal.record(0, MiB)
    journal.close()
    _append_record(path, b"W", offset, length)  # a valid CRC: not a torn tail, a lie
    with pytest.raises(JournalError, match=r"damaged journal.*sectors of the disk.*--restart"):
        Journal.load(path)


def test_temporary_names_are_unique_per_writer(tmp_path: Path) -> None:
    """Two journals of one path being written at once (one process, two writers) do not
    share a temporary file: each has its own, created exclusively."""
    path = tmp_path / "j.journal"
    first = Journal.create(path, header())
    taken = tmp_path / f"{path.name}.{os.getpid()}.tmp"
    taken.write_bytes(b"someone else's")  # the old per-process name, in use
    first.mark_complete(8 * MiB + 512)
    first.close()
    assert taken.read_bytes() == b"someone else's"
    assert Journal.load(path).complete
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == [taken.name]
