"""Look at a disk source without uploading it: its format and backing chain, size,
allocation, partition table, and the fixed VHD it would become."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from ..errors import unreadable_file
from ..formats.boot_chain import BootChain, read_boot_chain
from ..formats.layout import DiskLayout
from ..formats.partitions import analyze_disk
from ..formats.sizes import SECTOR, blob_size, virtual_size
from ..formats.vhd import chs_geometry
from .base import ChainLink, DiskSource
from .open import open_source

#: The boot chain of a report made without reading it.
NOT_READ = BootChain(False, (), None, "not read")


@dataclass(frozen=True)
class ImageReport:
    """What :func:`inspect_image` found. Sizes are in bytes; ``disk_size`` is the
    source's (virtual) size, ``virtual_size`` the VHD's (``disk_size`` rounded up to a
    MiB); ``allocated_bytes`` what the source's own map says holds data; ``chain`` every
    file of the source, top first; ``geometry`` is the ``(cylinders, heads,
    sectors_per_track)`` of the VHD footer we would write; ``boot_chain`` the loaders on
    its EFI system partition and whether they are signed (secure boot)."""

    path: str
    disk_size: int
    allocated_bytes: int
    layout: DiskLayout
    virtual_size: int
    blob_size: int
    geometry: tuple[int, int, int]
    format: str = "raw"
    chain: tuple[ChainLink, ...] = ()
    boot_chain: BootChain = NOT_READ

    def to_json(self) -> dict[str, Any]:
        cylinders, heads, sectors_per_track = self.geometry
        return {
            "path": self.path,
            "format": self.format,
            "virtual_size": self.disk_size,
            "backing_chain": [link.to_json() for link in self.chain],
            "disk_size": self.disk_size,
            "allocated_bytes": self.allocated_bytes,
            "partition_scheme": self.layout.scheme,
            "partitions": [p.to_json() for p in self.layout.partitions],
            "firmware": self.layout.firmware,
            "os_family": self.layout.os_family,
            "generation": self.layout.generation,
            "warnings": list(self.layout.warnings),
            "boot_chain": self.boot_chain.to_json(),
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


def _inspect(image: DiskSource) -> ImageReport:
    """The blocking part: extents, then the partition table, in one worker thread."""
    path = image.path
    try:
        allocated = image.allocated_bytes()
        layout = analyze_disk(image.read_at, image.size)
        boot_chain = read_boot_chain(image.read_at, image.size, layout.partitions)
    except OSError as exc:
        raise unreadable_file(path, exc) from None
    vsize = virtual_size(image.size)
    return ImageReport(
        path=path,
        format=image.format,
        chain=tuple(image.chain),
        disk_size=image.size,
        allocated_bytes=allocated,
        layout=layout,
        virtual_size=vsize,
        blob_size=blob_size(image.size),
        geometry=chs_geometry(vsize // SECTOR),
        boot_chain=boot_chain,
    )


async def inspect_source(image: DiskSource) -> ImageReport:
    """Report on an open source (left open): its format and chain, partition table and
    allocation, and the fixed VHD it would become."""
    # Not abandoned on cancellation, so the source is never closed under the thread.
    return await anyio.to_thread.run_sync(_inspect, image)


async def inspect_image(
    location: str | os.PathLike[str], *, image_format: str | None = None
) -> ImageReport:
    """Open a source (a file of any format, or an NBD URL: see
    :func:`~azrestore.sources.open.open_source`; ``image_format`` forces one), read its
    partition table and allocation, and report the fixed VHD it would become. Raises
    :class:`~azrestore.errors.InputError` for a source that cannot be used."""
    image = await open_source(location, image_format=image_format)
    try:
        return await inspect_source(image)
    finally:
        image.close()
