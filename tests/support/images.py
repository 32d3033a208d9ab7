"""Build sparse raw test images: data written only where asked, holes elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

from azrestore.formats.sizes import MiB


def make_sparse_image(path: Path, size: int, chunks: list[tuple[int, bytes]]) -> Path:
    """A file of ``size`` bytes, holes everywhere but the ``(offset, data)`` chunks."""
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset, data in chunks:
            handle.seek(offset)
            handle.write(data)
    assert os.path.getsize(path) == size
    return path


def expected_vhd_body(image: Path) -> bytes:
    """The image's bytes followed by zero padding to the next whole MiB."""
    data = image.read_bytes()
    padded = -(-len(data) // MiB) * MiB
    return data + bytes(padded - len(data))
