"""convert_to_vhd: the VHD file is image + zero padding + footer, holes stay holes, and
qemu-img (the independent reader) agrees."""

from __future__ import annotations

import _thread
import ctypes
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from azrestore.errors import InputError, TransferError
from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import VhdFooter
from azrestore.transfer.convert import convert_file, convert_to_vhd
from azrestore.transfer.fileblocks import preallocate
from tests.support.images import expected_vhd_body, make_sparse_image
from tests.support.tools import needs, require, unavailable

needs_qemu = needs("qemu-img")


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


@needs_qemu
@pytest.mark.parametrize(
    "size",
    [MiB, 3 * MiB + 512, 7 * MiB + 333, 64 * MiB + 1],
)
def test_convert_matches_qemu(tmp_path: Path, size: int) -> None:
    image = make_sparse_image(
        tmp_path / "disk.raw",
        size,
        [(0, b"boot"), (size // 2, os.urandom(70_000)[: size - size // 2]), (size - 1, b"\x7f")],
    )
    out = tmp_path / "disk.vhd"
    progress: list[tuple[int, int]] = []
    result = anyio.run(
        lambda: convert_to_vhd(image, out, on_progress=lambda d, t: progress.append((d, t)))
    )
    body = expected_vhd_body(image)
    data = out.read_bytes()
    assert data[:-512] == body
    assert VhdFooter.parse(data[-512:]).current_size == len(body)
    assert result.blob_size == len(data) and result.virtual_size == len(body)
    assert progress and progress[-1][0] == progress[-1][1]
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "-f", "vpc", "--output=json", str(out)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert info["virtual-size"] == len(body)
    compare = subprocess.run(
        ["qemu-img", "compare", "-f", "raw", str(image), "-F", "vpc", str(out)],
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr
    assert "identical" in compare.stdout.lower()


def test_holes_stay_holes(tmp_path: Path) -> None:
    size = 256 * MiB
    image = make_sparse_image(
        tmp_path / "disk.raw", size, [(0, os.urandom(MiB)), (200 * MiB, os.urandom(MiB))]
    )
    out = tmp_path / "disk.vhd"
    result = anyio.run(lambda: convert_to_vhd(image, out))
    assert result.bytes_copied <= allocated(image)
    # The output holds about as many blocks as the input's data (plus the footer's block).
    assert allocated(out) <= allocated(image) + 64 * 1024
    assert out.stat().st_size == size + 512


def test_refuses_to_overwrite_or_convert_onto_itself(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", MiB, [(0, b"x")])
    out = tmp_path / "disk.vhd"
    out.write_bytes(b"keep me")
    with pytest.raises(InputError, match="already exists"):
        anyio.run(lambda: convert_to_vhd(image, out))
    assert out.read_bytes() == b"keep me"
    with pytest.raises(InputError, match="output is the input"):
        anyio.run(lambda: convert_to_vhd(image, image, overwrite=True))
    assert image.stat().st_size == MiB
    anyio.run(lambda: convert_to_vhd(image, out, overwrite=True))
    assert out.stat().st_size == MiB + 512


def test_a_fixed_vhd_converts_to_itself(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 2 * MiB, [(0, b"x")])
    vhd = tmp_path / "disk.vhd"
    anyio.run(lambda: convert_to_vhd(image, vhd))
    # Read as a source too (the file less its footer): the same VHD again.
    anyio.run(lambda: convert_to_vhd(vhd, tmp_path / "again.vhd"))
    assert (tmp_path / "again.vhd").read_bytes()[:-512] == vhd.read_bytes()[:-512]


@pytest.mark.parametrize("workers", [1, 3])
def test_large_extents_copied_by_parallel_workers(tmp_path: Path, workers: int) -> None:
    """Extents longer than one worker's piece (32 MiB), ending off a block boundary."""
    size = 100 * MiB + 4097
    image = make_sparse_image(
        tmp_path / "disk.raw",
        size,
        [(MiB, os.urandom(70 * MiB + 123)), (90 * MiB, os.urandom(size - 90 * MiB))],
    )
    out = tmp_path / "disk.vhd"
    progress: list[tuple[int, int]] = []
    result = anyio.run(
        lambda: convert_to_vhd(
            image, out, workers=workers, on_progress=lambda d, t: progress.append((d, t))
        )
    )
    data = out.read_bytes()
    assert data[:-512] == expected_vhd_body(image)
    assert result.bytes_copied == progress[-1][0] == progress[-1][1] >= 80 * MiB
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)


def test_a_failed_write_removes_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 80 * MiB, [(0, os.urandom(80 * MiB))])
    out = tmp_path / "disk.vhd"
    writes = 0
    real_pwrite = os.pwrite

    def failing_pwrite(fd: int, data: bytes, offset: int) -> int:
        nonlocal writes
        writes += 1
        if writes == 5:
            raise OSError(28, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", failing_pwrite)
    with pytest.raises(TransferError, match="writing the VHD failed: No space left on device"):
        anyio.run(lambda: convert_to_vhd(image, out, workers=2))
    assert not out.exists()


def test_cancellation_stops_the_copy_and_removes_the_output(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 160 * MiB, [(0, os.urandom(160 * MiB))])
    out = tmp_path / "disk.vhd"
    progress: list[int] = []

    async def main() -> None:
        with anyio.CancelScope() as scope:

            def on_progress(done: int, total: int) -> None:
                progress.append(done)
                scope.cancel()  # called on the event loop, so this is allowed

            await convert_to_vhd(image, out, on_progress=on_progress, workers=1)
        assert scope.cancelled_caught

    anyio.run(main)
    assert not out.exists()
    # Stopped within a piece or two of the first report, not after all five.
    assert 1 <= len(progress) <= 2 and progress[0] == 32 * MiB


def test_data_extents_are_preallocated_and_holes_left(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        preallocate(fd, [(MiB, 2 * MiB), (8 * MiB, MiB)])
        info = os.fstat(fd)
    finally:
        os.close(fd)
    if info.st_blocks == 0:
        pytest.skip("this file system has no fallocate")
    assert info.st_size == 9 * MiB
    assert info.st_blocks * 512 == 3 * MiB


@pytest.mark.parametrize(
    ("code", "refused"),
    [(errno.ENOSPC, True), (errno.EDQUOT, True), (errno.EOPNOTSUPP, False), (errno.EINVAL, False)],
)
def test_a_refused_preallocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, refused: bool
) -> None:
    """No room stops the conversion before any data is written; any other refusal (a file
    system without fallocate) only skips the preallocation, after one try."""
    image = make_sparse_image(
        tmp_path / "disk.raw", 8 * MiB, [(0, os.urandom(MiB)), (4 * MiB, os.urandom(MiB))]
    )
    out = tmp_path / "disk.vhd"
    calls: list[tuple[int, int]] = []

    def fallocate(fd: int, mode: int, offset: int, length: int) -> int:
        calls.append((offset, length))
        ctypes.set_errno(code)
        return -1

    class Libc:
        def __init__(self, name: str | None, use_errno: bool = False) -> None:
            assert name is None and use_errno
            self.fallocate = fallocate

    monkeypatch.setattr(ctypes, "CDLL", Libc)
    if refused:
        with pytest.raises(TransferError, match=f"writing the VHD failed: {os.strerror(code)}"):
            convert_file(image, out)
        assert not out.exists()
    else:
        result = convert_file(image, out)
        assert out.read_bytes()[:-512] == expected_vhd_body(image)
        assert result.bytes_copied == 2 * MiB
    assert calls == [(0, MiB)]


@pytest.fixture
def reflink_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a fresh XFS with reflink, loop-mounted for this test."""
    require("mkfs.xfs")
    backing = tmp_path / "xfs.img"
    mountpoint = tmp_path / "xfs"
    mountpoint.mkdir()
    with open(backing, "wb") as handle:
        handle.truncate(512 * MiB)
    subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(backing)], check=True)
    mounted = subprocess.run(
        ["mount", "-o", "loop", str(backing), str(mountpoint)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        unavailable(f"cannot loop-mount a file system here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


@needs_qemu
def test_extents_are_cloned_where_the_file_system_shares_blocks(reflink_dir: Path) -> None:
    """On XFS the data is reflinked, not copied: the VHD takes almost no space of its own.
    Tails short of a block, and the last byte of an image whose size is not a multiple of
    the block, are copied."""
    size = 100 * MiB + 333
    image = make_sparse_image(
        reflink_dir / "disk.raw",
        size,
        [
            (0, b"boot"),
            (MiB, os.urandom(40 * MiB + 1000)),
            (70 * MiB, os.urandom(20 * MiB)),
            (size - 1, b"\x7f"),
        ],
    )
    os.sync()
    free_before = os.statvfs(reflink_dir).f_bfree * os.statvfs(reflink_dir).f_frsize
    out = reflink_dir / "disk.vhd"
    result = convert_file(image, out)
    os.sync()
    free_after = os.statvfs(reflink_dir).f_bfree * os.statvfs(reflink_dir).f_frsize

    assert 60 * MiB < result.bytes_copied <= allocated(image)
    # Everything but the last block's 333 bytes (XFS's blocks here are 4 KiB).
    assert result.bytes_cloned == result.bytes_copied - size % 4096 == result.bytes_copied - 333
    assert free_before - free_after < 4 * MiB  # shared blocks, a few copied ones, metadata
    assert out.read_bytes()[:-512] == expected_vhd_body(image)
    compare = subprocess.run(
        ["qemu-img", "compare", "-f", "raw", str(image), "-F", "vpc", str(out)],
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr
    # The copy shares blocks, it is not the same file: writing the image leaves it alone.
    with open(image, "r+b") as handle:
        handle.seek(MiB)
        handle.write(b"changed")
    assert out.read_bytes()[MiB : MiB + 7] != b"changed"


def test_a_worker_that_will_not_start_fails_the_conversion_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread that did start is waited for before the output is closed and removed."""
    image = make_sparse_image(tmp_path / "disk.raw", 96 * MiB, [(0, os.urandom(96 * MiB))])
    out = tmp_path / "disk.vhd"
    real_start = _thread.start_new_thread
    started: list[int] = []

    def start_once(function: Any, args: tuple[Any, ...]) -> int:
        if started:
            raise RuntimeError("can't start new thread")
        started.append(real_start(function, args))
        return started[-1]

    monkeypatch.setattr(_thread, "start_new_thread", start_once)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        convert_file(image, out, workers=3)
    assert len(started) == 1
    assert not out.exists()
