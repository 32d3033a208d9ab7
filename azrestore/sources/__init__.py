"""Disk image readers: size, allocated extents (SEEK_DATA/SEEK_HOLE), reads into pooled
buffers. Reads are synchronous here; callers run them off the event loop."""

from .base import FORMATS, ChainLink, DiskSource
from .raw import BufferPool, RawImage, open_raw_image

__all__ = ["FORMATS", "BufferPool", "ChainLink", "DiskSource", "RawImage", "open_raw_image"]
