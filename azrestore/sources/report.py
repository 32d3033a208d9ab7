"""Look at a raw disk image without uploading it: size, allocation, partition table, and
the fixed VHD it would become."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from ..errors import unreadable_file
from ..formats.layout import DiskLayout
from ..formats.partitions import analyze_disk
from ..formats.sizes import SECTOR, blob_size, virtual_size
from ..formats.vhd import chs_geometry
from .raw import RawImage, open_raw_image


@dataclass(frozen=True)
class ImageReport:
    """What :func:`inspect_image` found. Sizes are in bytes; ``geometry`` is the
    ``(cylinders, heads, sectors_per_track)`` of the VHD footer we would write."""

    path: str
    disk_size: int
    allocated_bytes: int
    layout: DiskLayout
    virtual_size: int
    blob_size: int
    geometry: tuple[int, int, int]

    def to_json(self) -> dict[str, Any]:
        cylinders, heads, sectors_per_track = self.geometry
        return {
            "path": self.path,
            "disk_size": self.disk_size,
            "allocated_bytes": self.allocated_bytes,
            "partition_scheme": self.layout.scheme,
            "partitions": [p.to_json() for p in self.layout.partitions],
            "firmware": self.layout.firmware,
            "os_family": self.layout.os_family,
            "generation": self.layout.generation,
            "warnings": list(self.layout.warnings),
            "vhd": {
                "virtual_size": self.virtual_size,
                "blob_size": self.blob_size,
                "geometry": {
                    "cylinders": cylinders,
                    "heads": heads,
                    "sectors_per_track": sectors_per_track,
                },
            },
        }


def _inspect(image: RawImage, path: str) -> ImageReport:
    """The blocking part: extents, then the partition table, in one worker thread."""
    try:
        allocated = sum(length for _, length in image.data_extents())
        layout = analyze_disk(image.read_at, image.size)
    except OSError as exc:
        raise unreadable_file(path, exc) from None
    vsize = virtual_size(image.size)
    return ImageReport(
        path=path,
        disk_size=image.size,
        allocated_bytes=allocated,
        layout=layout,
        virtual_size=vsize,
        blob_size=blob_size(image.size),
        geometry=chs_geometry(vsize // SECTOR),
    )


async def inspect_image(path: str | os.PathLike[str]) -> ImageReport:
    """Open a raw image, read its partition table and allocation, and report the fixed
    VHD it would become. Raises :class:`~azrestore.errors.InputError` for an image that
    cannot be used (see :func:`~azrestore.sources.raw.open_raw_image`)."""
    image = await open_raw_image(path)
    try:
        # Not abandoned on cancellation, so the fd is never closed under the thread.
        return await anyio.to_thread.run_sync(_inspect, image, os.fspath(path))
    finally:
        image.close()
