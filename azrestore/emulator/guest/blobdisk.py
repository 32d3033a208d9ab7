"""A managed disk's bytes as a local sparse file for a guest script, and back.

:func:`materialize` downloads only the chunks of the disk's page blob that hold written
pages (the 512-byte VHD footer stays out: it is not part of the disk the guest sees) and
keeps a digest of each; :func:`put_back` uploads only the chunks whose bytes changed (Put
Page) and clears those that became all zeros (Clear Page).
"""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import anyio

from azrestore.emulator.arm.storage import DISK_BLOB, DiskStorage

__all__ = ["CHUNK", "DiskFile", "PutBack", "materialize", "put_back"]

#: Bytes per chunk, as one Put Page (at most 4 MiB; aiohttp warns of raw bodies over 1 MiB).
CHUNK: Final = 1024 * 1024
_FOOTER: Final = 512
_PARALLEL: Final = 8
#: Chunks fetched by one Get Blob (4 MiB).
_RUN: Final = 4


@dataclass
class DiskFile:
    """A disk's bytes in a local file, with a digest of each chunk that held data."""

    container: str
    path: Path
    size: int
    digests: dict[int, bytes] = field(default_factory=dict)
    downloaded: int = 0
    """Bytes fetched from storage."""

    def chunks(self) -> int:
        """How many chunks the disk has (the last one may be shorter)."""
        return -(-self.size // CHUNK)

    def span(self, index: int) -> tuple[int, int]:
        """The byte offset and length of chunk ``index``."""
        start = index * CHUNK
        return start, min(CHUNK, self.size - start)


@dataclass(frozen=True)
class PutBack:
    """What :func:`put_back` wrote: chunks uploaded and cleared, and the bytes sent."""

    uploaded: int
    cleared: int
    sent: int


def _digest(data: bytes) -> bytes | None:
    """The chunk's digest, None for all zeros."""
    if data.count(0) == len(data):
        return None
    return hashlib.sha256(data).digest()


async def materialize(storage: DiskStorage, container: str, path: Path) -> DiskFile:
    """Download the disk blob of ``container`` into a sparse file at ``path``."""
    blob = storage.service.get_blob_client(container, DISK_BLOB)
    properties = await blob.get_blob_properties()
    size = int(properties.size) - _FOOTER
    if size <= 0 or size % 512:
        raise ValueError(f"disk blob of {properties.size} bytes is not a fixed VHD")
    disk = DiskFile(container=container, path=path, size=size)
    wanted: set[int] = set()
    async for page in blob.list_page_ranges(offset=0, length=size):
        if page.cleared:
            continue
        start, end = int(page.start or 0), min(int(page.end or 0), size - 1)
        if start <= end:
            wanted.update(range(start // CHUNK, end // CHUNK + 1))
    await anyio.to_thread.run_sync(_new_sparse_file, path, size)
    limiter = anyio.CapacityLimiter(_PARALLEL)

    async def fetch(first: int, count: int) -> None:
        offset = first * CHUNK
        length = min(count * CHUNK, size - offset)
        async with limiter:
            downloader = await blob.download_blob(offset=offset, length=length)
            data = await downloader.readall()
        disk.downloaded += len(data)
        digests = await anyio.to_thread.run_sync(_store, path, first, data)
        disk.digests.update(digests)

    async with anyio.create_task_group() as tasks:
        for first, count in _runs(sorted(wanted)):
            tasks.start_soon(fetch, first, count)
    return disk


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """Consecutive chunk indices as ``(first, count)`` runs of at most 4 chunks (one Get
    Blob each)."""
    runs: list[tuple[int, int]] = []
    for index in indices:
        if runs and runs[-1][0] + runs[-1][1] == index and runs[-1][1] < _RUN:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((index, 1))
    return runs


def _new_sparse_file(path: Path, size: int) -> None:
    with path.open("wb") as file:
        file.truncate(size)


def _store(path: Path, first: int, data: bytes) -> dict[int, bytes]:
    """Write the non-zero chunks of ``data`` (chunks from ``first`` on); their digests."""
    digests: dict[int, bytes] = {}
    view = memoryview(data)
    for number, start in enumerate(range(0, len(data), CHUNK)):
        piece = bytes(view[start : start + CHUNK])
        digest = _digest(piece)
        if digest is not None:
            digests[first + number] = digest
            _write_at(path, (first + number) * CHUNK, piece)
    return digests


def _write_at(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def _read_at(path: Path, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


def _changed_chunks(disk: DiskFile) -> list[tuple[int, bool]]:
    """Each chunk whose bytes differ from what was downloaded, and whether it is now zero."""
    changed: list[tuple[int, bool]] = []
    fd = os.open(disk.path, os.O_RDONLY)
    try:
        for index in range(disk.chunks()):
            offset, length = disk.span(index)
            try:
                has_data = os.lseek(fd, offset, os.SEEK_DATA) < offset + length
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                has_data = False
            data = os.pread(fd, length, offset) if has_data else b""
            digest = _digest(data) if has_data else None
            if digest != disk.digests.get(index):
                changed.append((index, digest is None))
    finally:
        os.close(fd)
    return changed


async def put_back(storage: DiskStorage, disk: DiskFile) -> PutBack:
    """Write what changed in the local file back to the disk's blob."""
    blob = storage.service.get_blob_client(disk.container, DISK_BLOB)
    changed = await anyio.to_thread.run_sync(_changed_chunks, disk)
    limiter = anyio.CapacityLimiter(_PARALLEL)
    uploaded = cleared = sent = 0

    async def write(index: int, zero: bool) -> None:
        nonlocal uploaded, cleared, sent
        offset, length = disk.span(index)
        async with limiter:
            if zero:
                await blob.clear_page(offset=offset, length=length)
                cleared += 1
            else:
                data = await anyio.to_thread.run_sync(_read_at, disk.path, offset, length)
                await blob.upload_page(data, offset=offset, length=length)
                uploaded += 1
                sent += length

    async with anyio.create_task_group() as tasks:
        for index, zero in changed:
            tasks.start_soon(write, index, zero)
    return PutBack(uploaded=uploaded, cleared=cleared, sent=sent)
