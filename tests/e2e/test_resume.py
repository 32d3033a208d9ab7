"""Crash safety end to end: a real ``azrestore upload`` killed with SIGKILL at seeded random
moments (some right after journal writes, leaving a torn record), then run again, through
the strict gateway into Azurite; changed sources refused; a multi-GiB upload through 5%
injected faults; a SAS that expires midway renewed; bulk uploads from a manifest."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from azrestore.azure.pageblob import open_page_blob
from azrestore.emulator.storage import FaultRule, GatewayThread
from azrestore.formats.sizes import MiB, blob_size, virtual_size
from azrestore.formats.vhd import VhdFooter
from azrestore.formats.zeros import nonzero_runs
from azrestore.sources.raw import RawImage
from azrestore.transfer.chunking import read_windows
from azrestore.transfer.config import TransferConfig
from azrestore.transfer.journal import RECORD_SIZE, journal_path
from azrestore.transfer.pipeline import upload_disk
from azrestore.transfer.verify import verify_disk
from tests.support.cli import azrestore_script
from tests.support.images import expected_vhd_body, make_sparse_image
from tests.support.pages import page_span
from tests.support.storage import StorageTarget

CONCURRENCY = 4
CHUNK = MiB
#: Requests in flight when a run is killed, each at most a chunk: all a kill may cost.
WINDOW = CONCURRENCY * CHUNK
#: What a journal append cut short by a kill leaves: the first half of a record.
TORN_RECORD = b"W 0000000000000000 0000000000100000 00000000\n"[: RECORD_SIZE // 2]


def mixed_image(path: Path, size: int, seed: int) -> Path:
    """Random data, written zeros and holes, at seeded places."""
    rng = random.Random(seed)
    chunks = []
    offset = rng.randrange(0, MiB)
    while offset < size - 64 * 1024:
        length = min(rng.randrange(4096, 3 * MiB), size - offset)
        data = rng.randbytes(length) if rng.random() < 0.8 else bytes(length)
        chunks.append((offset, data))
        offset += length + rng.choice([0, 4096, 100_000, 2 * MiB])
    return make_sparse_image(path, size, chunks)


def bytes_needed(image: Path, config: TransferConfig) -> int:
    """What a clean upload sends: the non-zero runs of every window, and the footer."""
    with RawImage.open(image) as raw:
        vsize = virtual_size(raw.size)
        total = 512
        buffer = bytearray(config.chunk_size)
        for window in read_windows(
            raw.data_extents(), virtual_size=vsize, chunk_size=config.chunk_size
        ):
            view = memoryview(buffer)[: window.length]
            raw.read_into(view, window.offset)
            runs = nonzero_runs(view, config.zero_block, config.merge_gap)
            total += sum(end - start for start, end in runs)
    return total


def upload_command(image: Path, url: str, journals: Path, *extra: str) -> list[str]:
    return [
        *azrestore_script(),
        "upload",
        str(image),
        "--to",
        url,
        "--concurrency",
        str(CONCURRENCY),
        "--chunk-size",
        "1MiB",
        "--journal-dir",
        str(journals),
        "--json",
        *extra,
    ]


def wait_for_journal(journal: Path, child: subprocess.Popen[bytes]) -> None:
    """Until ``journal`` exists or ``child`` has ended."""
    deadline = time.monotonic() + 60
    while not journal.exists() and child.poll() is None:
        assert time.monotonic() < deadline, "the upload never started"
        time.sleep(0.002)


def wait_for_records(journal: Path, child: subprocess.Popen[bytes], records: int) -> None:
    """Until ``journal`` has grown by ``records`` records (polled) or ``child`` has ended."""
    start = journal.stat().st_size if journal.exists() else 0
    deadline = time.monotonic() + 60
    while child.poll() is None:
        try:
            if journal.stat().st_size >= start + records * RECORD_SIZE:
                return
        except FileNotFoundError:
            pass
        assert time.monotonic() < deadline, "the journal stopped growing"
        time.sleep(0.001)


def assert_blob_is(storage: StorageTarget, name: str, image: Path) -> None:
    data = storage.blob_client(name).download_blob().readall()
    body = expected_vhd_body(image)
    assert len(data) == len(body) + 512
    assert data[:-512] == body, "the blob differs from the image"
    assert VhdFooter.parse(data[-512:]).current_size == len(body)


def test_killed_at_random_moments_then_resumed(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path
) -> None:
    """At least 20 SIGKILLs at seeded random moments (requests in flight, between chunks,
    before the first request, after the footer), some after a random number of journal
    records, with the next record torn."""
    rng = random.Random(20261124)
    # Slow enough that a kill lands mid-upload: each Put Page waits 40 ms at the gateway.
    gateway.set_rules([FaultRule(operation="PutPage", action="delay", delay=0.04)])
    journals = tmp_path / "journals"
    config = TransferConfig(concurrency=CONCURRENCY, chunk_size=CHUNK)
    kills = torn = 0
    for round_number in range(8):
        image = mixed_image(tmp_path / f"disk{round_number}.raw", 40 * MiB + 3584, round_number)
        needed = bytes_needed(image, config)
        name = f"kill{round_number}.vhd"
        url = storage.sas_url(name)
        journal = journal_path(journals, storage.blob_url(name))
        gateway.reset_statistics()
        round_kills = 0
        for attempt in range(5):
            tear_record = attempt < 4 and rng.random() < 0.25
            records = rng.randrange(0, 12) if tear_record else 0
            child = subprocess.Popen(
                upload_command(image, url, journals),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                if attempt < 4:
                    wait_for_journal(journal, child)
                    if tear_record:
                        wait_for_records(journal, child, records)
                    else:
                        time.sleep(rng.uniform(0.0, 0.5))
                    child.send_signal(signal.SIGKILL)
                stdout, stderr = child.communicate(timeout=120)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.communicate()
            if child.returncode == -signal.SIGKILL:
                round_kills += 1
                if tear_record:
                    # Killed in the middle of its next journal append, as it may have been.
                    with open(journal, "ab") as handle:
                        handle.write(TORN_RECORD)
                    torn += 1
                continue
            assert child.returncode == 0, stderr.decode()
            result = json.loads(stdout)
            assert (
                result["bytes_uploaded"] + result["bytes_skipped"] + result["bytes_resumed"]
                == result["blob_size"]
            )
            break
        else:
            pytest.fail("the last run was not killed, yet did not finish")
        assert_blob_is(storage, name, image)
        # Each kill cost at most the requests then in flight: sent twice at most.
        received = gateway.statistics().bytes_received.get("PutPage", 0)
        assert needed <= received <= needed + round_kills * (WINDOW + 512), (
            round_number,
            round_kills,
            received - needed,
        )
        kills += round_kills
    assert kills >= 20 and torn >= 3, (kills, torn)


def test_changed_source_is_refused_and_restart_starts_over(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path
) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 12 * MiB, [(0, os.urandom(12 * MiB))])
    journals = tmp_path / "journals"
    url = storage.sas_url("changed.vhd")
    gateway.set_rules(
        [
            FaultRule(
                operation="PutPage",
                status=403,
                code="AuthorizationPermissionMismatch",
                nth=6,
            )
        ]
    )
    first = subprocess.run(
        upload_command(image, url, journals), capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 1, first.stderr
    gateway.set_rules([])
    with open(image, "r+b") as handle:  # same size, new content
        handle.seek(5 * MiB)
        handle.write(os.urandom(4096))
    refused = subprocess.run(
        upload_command(image, url, journals), capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2
    assert refused.stdout == ""
    line = refused.stderr.strip()
    assert line.startswith("azrestore: error: ") and len(refused.stderr.splitlines()) == 1
    assert "cannot be continued" in line and "source was modified" in line
    assert "--restart" in line and "sig=" not in line.replace("sig=REDACTED", "")
    again = subprocess.run(
        upload_command(image, url, journals, "--restart", "--verify"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["bytes_resumed"] == 0 and data["verify"]["identical"]
    assert_blob_is(storage, "changed.vhd", image)
    # The same command once more: nothing left to do.
    done = subprocess.run(
        upload_command(image, url, journals), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bytes_resumed"] == blob_size(12 * MiB)
    # No secret in any journal.
    for path in journals.iterdir():
        assert "sig=" not in path.read_text()


def test_multi_gib_upload_through_5_percent_faults(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path
) -> None:
    """A 4 GiB sparse disk with 1 GiB of data in scattered extents; 5% of Put Pages
    answered 503 and 5% reset mid-body. The blob ends identical (checked by --verify and
    independently, range by range, with the SDK straight from Azurite)."""
    size = 4 * 1024 * MiB
    rng = random.Random(5)
    chunks: list[tuple[int, bytes]] = []
    offset = 0
    while sum(len(data) for _, data in chunks) < 1024 * MiB:
        offset += rng.randrange(0, 48 * MiB) // 4096 * 4096
        length = rng.randrange(4, 33) * MiB
        chunks.append((offset, os.urandom(length)))
        offset += length
    assert offset < size
    image = make_sparse_image(tmp_path / "big.raw", size, chunks)
    del chunks
    gateway.set_rules(
        [
            FaultRule(operation="PutPage", status=503, rate=0.05, seed=11),
            FaultRule(operation="PutPage", action="reset", rate=0.05, seed=12),
        ]
    )
    done = subprocess.run(
        [
            *azrestore_script(),
            "upload",
            str(image),
            "--to",
            storage.sas_url("faults.vhd"),
            "--journal-dir",
            str(tmp_path / "journals"),
            "--verify",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    fired = gateway.statistics().faults_by_action
    assert fired.get("status", 0) > 10 and fired.get("reset", 0) > 10
    assert data["retries"] >= fired["status"]
    assert data["verify"]["identical"] and data["verify"]["bytes_read_back"] >= 1024 * MiB
    gateway.set_rules([])
    client = storage.blob_client("faults.vhd")
    assert client.get_blob_properties().size == blob_size(size)
    with open(image, "rb") as handle:
        for extent_offset, length in RawImage.open(image).data_extents():
            position = extent_offset
            while position < extent_offset + length:
                n = min(64 * MiB, extent_offset + length - position)
                got = client.download_blob(offset=position, length=n).readall()
                handle.seek(position)
                assert got == handle.read(n), f"differs at {position}"
                position += n
        ranges = [r for r in client.list_page_ranges() if not r.cleared]
    written = sum(end - start for start, end in map(page_span, ranges))
    assert written == data["bytes_uploaded"]


@pytest.mark.anyio
async def test_sas_expiring_midway_is_renewed(storage: StorageTarget, tmp_path: Path) -> None:
    """The SAS expires while the upload runs (the gateway refuses it as Azure does: 403
    AuthenticationFailed); the refresher grants a new one once, the upload completes."""
    image = make_sparse_image(tmp_path / "disk.raw", 24 * MiB, [(0, os.urandom(24 * MiB))])
    storage.blob_client("renew.vhd").create_page_blob(24 * MiB + 512)
    short = storage.sas_url("renew.vhd", expiry=timedelta(seconds=2))
    calls = 0

    async def grant_again() -> str:
        nonlocal calls
        calls += 1
        return storage.sas_url("renew.vhd", expiry=timedelta(hours=1))

    config = TransferConfig(concurrency=4, chunk_size=MiB, max_bandwidth=6 * MiB)
    async with open_page_blob(short, existing=True, credential_refresher=grant_again) as sink:
        result = await upload_disk(image, sink, config=config)
        checked = await verify_disk(image, sink, config=config)
    assert calls == 1
    assert result.stats.retries >= 1  # the refused requests were sent again
    assert checked.identical
    assert_blob_is(storage, "renew.vhd", image)


def test_bulk_manifest_upload_and_rerun(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path
) -> None:
    images = {
        "small": make_sparse_image(tmp_path / "small.raw", 2 * MiB, [(0, os.urandom(2 * MiB))]),
        "sparse": mixed_image(tmp_path / "sparse.raw", 48 * MiB + 512, 7),
        "dense": make_sparse_image(tmp_path / "dense.raw", 9 * MiB, [(0, os.urandom(9 * MiB))]),
    }
    manifest = tmp_path / "disks.yaml"
    lines = [
        f"- image: {path.name}\n  to: '{storage.sas_url(name + '.vhd')}'\n  name: {name}\n"
        for name, path in images.items()
    ]
    lines.append(f"- image: missing.raw\n  to: '{storage.sas_url('missing.vhd')}'\n")
    manifest.write_text("".join(lines))
    command = [
        *azrestore_script(),
        "upload",
        "--manifest",
        str(manifest),
        "--journal-dir",
        str(tmp_path / "journals"),
        "--concurrency",
        "3",
        "--verify",
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr  # the missing image: bad input
    errors = done.stderr.splitlines()
    assert len(errors) == 1 and "missing.raw" in errors[0] and "no such file" in errors[0]
    data = json.loads(done.stdout)
    disks = {disk["name"]: disk for disk in data["disks"]}
    for name, path in images.items():
        assert disks[name]["ok"] and disks[name]["verify"]["identical"], disks[name]
        assert "sig=" not in disks[name]["url"] or "sig=REDACTED" in disks[name]["url"]
        assert_blob_is(storage, f"{name}.vhd", path)
    assert data["total"]["disks"] == 4 and data["total"]["failed"] == 1
    assert not storage.blob_client("missing.vhd").exists()
    # Run it again: the finished disks have nothing to do.
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2
    for disk in json.loads(again.stdout)["disks"]:
        if disk.get("ok"):
            assert disk["bytes_resumed"] == disk["blob_size"] and disk["bytes_uploaded"] == 0


def test_pairs_on_the_command_line(storage: StorageTarget, tmp_path: Path) -> None:
    first = make_sparse_image(tmp_path / "a.raw", 3 * MiB, [(MiB, os.urandom(MiB))])
    second = make_sparse_image(tmp_path / "b.raw", 5 * MiB, [(0, os.urandom(5 * MiB))])
    done = subprocess.run(
        [
            *azrestore_script(),
            "upload",
            f"{first}={storage.sas_url('a.vhd')}",
            f"{second}={storage.sas_url('b.vhd')}",
            "--journal-dir",
            str(tmp_path / "journals"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert len(out) == 3 and out[-1].startswith("2 of 2 disks done")
    assert all("sig=" not in line or "sig=REDACTED" in line for line in out)
    assert_blob_is(storage, "a.vhd", first)
    assert_blob_is(storage, "b.vhd", second)
