"""Disk image readers: size, allocated extents (SEEK_DATA/SEEK_HOLE), reads into pooled
buffers. Reads are synchronous here; callers run them off the event loop."""

from .raw import BufferPool, RawImage, open_raw_image

__all__ = ["BufferPool", "RawImage", "open_raw_image"]
