"""The source identity a journal records: ctime, old journals without it, and what the
kernel knows of a block device (read from a fake sysfs)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from azrestore.sources.raw import RawImage
from azrestore.transfer import blockstate
from azrestore.transfer.blockstate import BlockState, block_state
from azrestore.transfer.identity import SourceIdentity, source_identity
from azrestore.transfer.journal import JournalHeader
from azrestore.transfer.sink import TargetIdentity


def identity_of(path: Path) -> SourceIdentity:
    with RawImage.open(path) as image:
        return source_identity(image)


def test_a_rewrite_with_mtime_put_back_changes_the_ctime(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(os.urandom(1 << 20))
    before = identity_of(image)
    assert before.ctime_ns is not None
    info = image.stat()
    with open(image, "r+b") as handle:
        handle.seek(300_000)
        handle.write(b"x" * 4096)
    os.utime(image, ns=(info.st_atime_ns, info.st_mtime_ns))
    after = identity_of(image)
    assert after.mtime_ns == before.mtime_ns
    assert "was modified (ctime changed: written to, or its metadata changed)" in (
        before.differences(after)
    )
    assert before.differences(before) == []


def test_an_old_journal_without_ctime_loads_and_never_matches(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(os.urandom(1 << 20))
    now = identity_of(image)
    old = now.to_json()
    del old["ctime_ns"], old["block"]
    header = JournalHeader(SourceIdentity.from_json(old), TargetIdentity("k", 1, "t"), 1)
    data = json.loads(json.dumps(header.to_json()))
    recorded = JournalHeader.from_json(data).source
    assert recorded.ctime_ns is None
    (difference,) = recorded.differences(now)
    assert "older azrestore" in difference and "ctime" in difference


def fake_sys(root: Path, number: str, stat: str, diskseq: str | None) -> None:
    directory = root / "sys" / "dev" / "block" / number
    directory.mkdir(parents=True)
    (directory / "stat").write_text(stat)
    if diskseq is not None:
        (directory / "diskseq").write_text(diskseq + "\n")
    boot = root / "proc" / "sys" / "kernel" / "random"
    boot.mkdir(parents=True, exist_ok=True)
    (boot / "boot_id").write_text("boot-1\n")


STAT = "  10 0 80 5   3 0 {written} 7   0 9 12   1 0 {discarded} 0   0 0\n"


@pytest.fixture
def fake_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(blockstate, "SYS", str(tmp_path / "sys"))
    monkeypatch.setattr(blockstate, "PROC", str(tmp_path / "proc"))
    return tmp_path


def test_block_state_reads_sysfs(fake_root: Path) -> None:
    fake_sys(fake_root, "7:3", STAT.format(written=100, discarded=8), "42")
    state = block_state(os.makedev(7, 3))
    assert state == BlockState(rdev="7:3", boot_id="boot-1", diskseq=42, sectors_written=108)


def test_a_partition_has_its_disks_sequence_number(fake_root: Path) -> None:
    disk = fake_root / "sys" / "block" / "sda"
    (disk / "sda1").mkdir(parents=True)
    (disk / "diskseq").write_text("7\n")
    (disk / "sda1" / "partition").write_text("1\n")
    (disk / "sda1" / "stat").write_text(STAT.format(written=5, discarded=0))
    links = fake_root / "sys" / "dev" / "block"
    links.mkdir(parents=True)
    (links / "8:1").symlink_to(disk / "sda1")
    fake_sys(fake_root, "8:0", STAT.format(written=1, discarded=0), "7")
    state = block_state(os.makedev(8, 1))
    assert (state.rdev, state.diskseq, state.sectors_written) == ("8:1", 7, 5)


def test_no_sysfs_knows_nothing(fake_root: Path) -> None:
    state = block_state(os.makedev(7, 9))
    assert state == BlockState(rdev="7:9", boot_id=None, diskseq=None, sectors_written=None)


def test_what_a_device_change_says(fake_root: Path) -> None:
    fake_sys(fake_root, "7:3", STAT.format(written=100, discarded=0), "42")
    then = block_state(os.makedev(7, 3))
    written = dataclasses.replace(then, sectors_written=101)
    assert [d.startswith("was modified") for d in then.differences(written)] == [True]
    reattached = dataclasses.replace(then, diskseq=43)
    assert "another disk" in then.differences(reattached)[0]
    rebooted = dataclasses.replace(then, boot_id="boot-2")
    assert "restarted" in then.differences(rebooted)[0]
    other = dataclasses.replace(then, rdev="7:4")
    assert "another device" in then.differences(other)[0]
    assert then.differences(BlockState.from_json(dataclasses.asdict(then))) == []
    file_now = SourceIdentity("/d", 1, 1, 1, 1, "x", 1, None)
    device_then = dataclasses.replace(file_now, block=then)
    assert "another kind of file" in " ".join(device_then.differences(file_now))
