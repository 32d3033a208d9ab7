"""A source changed between a killed upload and the next run is never resumed into,
even when its modification time is put back (``touch -r``): a real ``azrestore upload``
of a file, and of a loop block device, killed with SIGKILL mid-upload, through the strict
gateway into Azurite, the blob read back with the Azure SDK."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from azrestore.emulator.storage import FaultRule, GatewayThread
from azrestore.formats.sizes import MiB
from azrestore.transfer.journal import RECORD_SIZE, journal_path
from tests.e2e.test_resume import (
    assert_blob_is,
    upload_command,
    wait_for_journal,
    wait_for_records,
)
from tests.support.images import make_sparse_image
from tests.support.storage import StorageTarget
from tests.support.tools import unavailable

BLOCK = 4096
SIZE = 32 * MiB


def recorded_ranges(journal: Path) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each ``W`` record after the header line, parsed here."""
    data = journal.read_bytes()
    body = data[data.index(b"\n") + 1 :]
    ranges = []
    for at in range(0, len(body) - RECORD_SIZE + 1, RECORD_SIZE):
        kind, offset, length, _ = body[at : at + RECORD_SIZE].split()
        if kind == b"W":
            start = int(offset, 16)
            ranges.append((start, start + int(length, 16)))
    return ranges


def unsampled_block(start: int, end: int) -> int:
    """A 4 KiB block in ``[start, end)`` that the source identity's sampled digest does
    not read (first and last 64 KiB, and 64 blocks spread evenly): only the times can tell
    it changed."""
    step = SIZE // 65
    sampled = {step * (i + 1) // BLOCK * BLOCK for i in range(64)}
    for offset in range(start + 64 * 1024, end - 64 * 1024, BLOCK):
        if all(abs(offset - s) > 2 * BLOCK for s in sampled) and offset < SIZE - 64 * 1024:
            return offset
    raise AssertionError(f"no unsampled block in [{start}, {end})")


def killed_upload(
    storage: StorageTarget, gateway: GatewayThread, image: Path, name: str, journals: Path
) -> list[tuple[int, int]]:
    """Start uploading ``image`` into blob ``name``, kill it with SIGKILL once two ranges
    are recorded; the ranges its journal recorded."""
    journal = journal_path(journals, storage.blob_url(name))
    # Slow enough that the kill lands mid-upload: each Put Page waits 100 ms.
    gateway.set_rules([FaultRule(operation="PutPage", action="delay", delay=0.1)])
    child = subprocess.Popen(
        upload_command(image, storage.sas_url(name), journals),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_journal(journal, child)
        wait_for_records(journal, child, 2)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == -signal.SIGKILL, "the upload ended before it was killed"
    gateway.set_rules([])
    sent = recorded_ranges(journal)
    assert sent, "no range was recorded before the kill"
    assert max(end for _, end in sent) < SIZE - 4 * MiB, "too much was sent before the kill"
    return sent


def rewrite_two_blocks(path: Path, sent: list[tuple[int, int]], rng: random.Random) -> None:
    """One 4 KiB block already sent and one not yet, each outside the sampled blocks,
    written through ``path`` (flushed), then its times put back as ``touch -r`` does."""
    before = os.stat(path)
    last_sent = max(end for _, end in sent)
    fd = os.open(path, os.O_WRONLY)
    try:
        for offset in (unsampled_block(*sent[0]), unsampled_block(last_sent + 4 * MiB, SIZE)):
            os.pwrite(fd, rng.randbytes(BLOCK), offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # touch -r
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns


def run_again_refused(storage: StorageTarget, image: Path, name: str, journals: Path) -> str:
    """The same command again: exit 2, one line saying why; that line."""
    refused = subprocess.run(
        upload_command(image, storage.sas_url(name), journals),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2, refused.stderr
    assert refused.stdout == ""
    line = refused.stderr.strip()
    assert line.startswith("azrestore: error: ") and len(refused.stderr.splitlines()) == 1
    assert "cannot be continued" in line and "source was modified" in line, line
    assert "--restart" in line
    return line


def restart(storage: StorageTarget, image: Path, name: str, journals: Path) -> None:
    again = subprocess.run(
        upload_command(image, storage.sas_url(name), journals, "--restart"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr


def test_rewrite_with_mtime_put_back_is_refused_and_restart_uploads_the_new_image(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path
) -> None:
    rng = random.Random(17)
    image = make_sparse_image(tmp_path / "disk.raw", SIZE, [(0, rng.randbytes(SIZE))])
    journals = tmp_path / "journals"
    sent = killed_upload(storage, gateway, image, "touched.vhd", journals)
    rewrite_two_blocks(image, sent, rng)
    line = run_again_refused(storage, image, "touched.vhd", journals)
    assert "ctime changed" in line
    restart(storage, image, "touched.vhd", journals)
    assert_blob_is(storage, "touched.vhd", image)  # the new image, read back with the SDK


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A loop block device over a file of random data: ``(device, backing file)``."""
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        unavailable("needs root and losetup")
    backing = make_sparse_image(
        tmp_path / "backing.raw", SIZE, [(0, random.Random(18).randbytes(SIZE))]
    )
    attached = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True
    )
    if attached.returncode != 0:
        unavailable(f"no loop devices here: {attached.stderr.strip()}")
    device = Path(attached.stdout.strip())
    try:
        yield device, backing
    finally:
        subprocess.run(["losetup", "--detach", str(device)], check=False)


def test_a_device_written_with_its_node_times_put_back_is_refused(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path, loop_device: tuple[Path, Path]
) -> None:
    device, backing = loop_device
    journals = tmp_path / "journals"
    sent = killed_upload(storage, gateway, device, "device.vhd", journals)
    rewrite_two_blocks(device, sent, random.Random(19))
    line = run_again_refused(storage, device, "device.vhd", journals)
    assert "sectors written or discarded through the device" in line
    restart(storage, device, "device.vhd", journals)
    assert_blob_is(storage, "device.vhd", backing)  # what the device holds now
