"""Benchmark disk images: made once in the work dir, reused while they still match.

Every image is a sparse raw file of an exact number of GiB (MiB for the small set):

* ``dense``: random bytes from start to end;
* ``sparse`` and ``huge``: holes with random-data extents of 1..16 MiB (4 KiB aligned, so
  the holes are real file-system holes) at seeded random offsets.

Random data has no all-zero 512-byte sector in practice, so the sum of the extents is the
image's non-zero data. A small JSON manifest beside each image records its recipe and the
file's size and mtime; an image is rebuilt when either no longer matches.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

#: Extents start and end on this boundary (a file-system block, so holes stay holes).
ALIGN = 4 * KiB
MIN_EXTENT = 1 * MiB
MAX_EXTENT = 16 * MiB
#: Random data is generated and written in blocks of this size.
WRITE_BLOCK = 64 * MiB
#: Bump when the recipe changes, so old images are rebuilt.
RECIPE_VERSION = 1

ROLES = ("dense", "sparse", "huge")


@dataclass(frozen=True)
class ImageSpec:
    name: str
    role: str  # one of ROLES
    size: int
    data_bytes: int
    seed: int

    @property
    def dense(self) -> bool:
        return self.data_bytes >= self.size

    def extents(self) -> list[tuple[int, int]]:
        """Sorted, disjoint ``(offset, length)`` data extents, the same for every call."""
        if self.dense:
            return [(0, self.size)]
        rng = np.random.default_rng(self.seed)
        lengths: list[int] = []
        total = 0
        while total < self.data_bytes:
            length = int(rng.integers(MIN_EXTENT // ALIGN, MAX_EXTENT // ALIGN + 1)) * ALIGN
            length = min(length, self.data_bytes - total)
            lengths.append(length)
            total += length
        # n extents leave n + 1 gaps; share the free space among them at random.
        free_units = (self.size - self.data_bytes) // ALIGN
        weights = rng.random(len(lengths) + 1)
        gaps = np.floor(weights / weights.sum() * free_units).astype(np.int64) * ALIGN
        extents = []
        offset = 0
        for gap, length in zip(gaps[:-1].tolist(), lengths, strict=True):
            offset += gap
            extents.append((offset, length))
            offset += length
        assert offset <= self.size
        return extents


def _spec(name: str, role: str, size: int, data: int, seed: int) -> ImageSpec:
    return ImageSpec(name=name, role=role, size=size, data_bytes=data, seed=seed)


FULL = (
    _spec("dense-4g", "dense", 4 * GiB, 4 * GiB, 1),
    _spec("sparse-8g", "sparse", 8 * GiB, 512 * MiB, 2),
    _spec("sparse-64g", "huge", 64 * GiB, 256 * MiB, 3),
)
SMALL = (
    _spec("dense-256m", "dense", 256 * MiB, 256 * MiB, 1),
    _spec("sparse-1g", "sparse", 1 * GiB, 64 * MiB, 2),
    _spec("sparse-8g-32m", "huge", 8 * GiB, 32 * MiB, 3),
)
SIZE_SETS = {"full": FULL, "small": SMALL}


def select(sizes: str, names: list[str] | None) -> list[ImageSpec]:
    """The images of a size set, all of them or those named (by name or by role)."""
    specs = SIZE_SETS[sizes]
    if not names:
        return list(specs)
    chosen: list[ImageSpec] = []
    for wanted in names:
        match = [s for s in specs if wanted in (s.name, s.role)]
        if not match:
            known = ", ".join(f"{s.name} ({s.role})" for s in specs)
            raise ValueError(f"no image {wanted!r} in the {sizes} set; known: {known}")
        chosen.extend(s for s in match if s not in chosen)
    return chosen


def _manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _recipe(spec: ImageSpec) -> dict[str, object]:
    return {"recipe_version": RECIPE_VERSION, **asdict(spec)}


def is_current(spec: ImageSpec, path: Path) -> bool:
    try:
        manifest = json.loads(_manifest_path(path).read_text())
        info = path.stat()
    except (OSError, ValueError):
        return False
    return bool(
        manifest.get("recipe") == _recipe(spec)
        and manifest.get("st_size") == info.st_size == spec.size
        and manifest.get("st_mtime_ns") == info.st_mtime_ns
    )


def _random_blocks(rng: np.random.Generator, length: int) -> Iterator[memoryview]:
    """``length`` random bytes (a multiple of 8) in blocks of at most WRITE_BLOCK."""
    left = length
    while left:
        n = min(left, WRITE_BLOCK)
        words = rng.bit_generator.random_raw(n // 8)
        yield np.ascontiguousarray(words, dtype=np.uint64).data.cast("B")
        left -= n


def build(spec: ImageSpec, path: Path) -> None:
    """Write the image (to a temporary name, renamed when complete) and its manifest."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
    tmp.unlink(missing_ok=True)
    rng = np.random.default_rng([spec.seed, 0xDA7A])
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.ftruncate(fd, spec.size)
        for offset, length in spec.extents():
            position = offset
            for block in _random_blocks(rng, length):
                written = 0
                while written < len(block):
                    written += os.pwrite(fd, block[written:], position + written)
                position += len(block)
        os.fsync(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    tmp.rename(path)
    info = path.stat()
    manifest = {
        "recipe": _recipe(spec),
        "st_size": info.st_size,
        "st_mtime_ns": info.st_mtime_ns,
        "extents": len(spec.extents()),
    }
    _manifest_path(path).write_text(json.dumps(manifest, indent=1) + "\n")


def ensure(spec: ImageSpec, workdir: Path) -> tuple[Path, bool]:
    """The image's path, building it first when missing or stale; also whether it was built."""
    path = workdir / f"{spec.name}.raw"
    if is_current(spec, path):
        return path, False
    path.unlink(missing_ok=True)
    _manifest_path(path).unlink(missing_ok=True)
    build(spec, path)
    return path, True


def allocated_bytes(path: Path) -> int:
    """Bytes the file system holds for the file (its holes cost nothing)."""
    return path.stat().st_blocks * 512


def data_ranges(path: Path) -> list[tuple[int, int]]:
    """``(start, end)`` of the file's data as SEEK_DATA/SEEK_HOLE report it."""
    ranges = []
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        position = 0
        while position < size:
            try:
                start = os.lseek(fd, position, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after position
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            ranges.append((start, end))
            position = end
    finally:
        os.close(fd)
    return ranges


def warm(path: Path) -> None:
    """Read the file's data once, so every tool starts with it in the page cache; and flush
    dirty pages first, so no tool pays for writeback that an earlier step left behind."""
    os.sync()
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        buffer = bytearray(8 * MiB)
        for start, end in data_ranges(path):
            position = start
            while position < end:
                n = os.preadv(
                    fd, [memoryview(buffer)[: min(len(buffer), end - position)]], position
                )
                if n <= 0:
                    break
                position += n
    finally:
        os.close(fd)


def read_at(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)
