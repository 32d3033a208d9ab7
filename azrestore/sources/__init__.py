"""Disk image readers: size, allocated extents (SEEK_DATA/SEEK_HOLE), reads into pooled
buffers. Reads are synchronous here; callers run them off the event loop."""

# The interface every source implements is in .base (not imported here: the quick
# convert start loads no dataclasses or typing).
from .raw import BufferPool, RawImage, open_raw_image

__all__ = ["BufferPool", "RawImage", "open_raw_image"]
