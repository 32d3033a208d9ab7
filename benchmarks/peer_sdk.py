"""Peer: upload a raw image as a fixed VHD with azure-storage-blob's own page-blob upload.

Run as its own process (so its CPU time and peak RSS are its own)::

    python -m benchmarks.peer_sdk IMAGE --url SAS_URL [--concurrency 16] [--api aio|sync]

It does what a user of the SDK would: ``upload_blob(stream, length, blob_type="PageBlob",
max_concurrency=N, overwrite=True)``. The stream is the image, then zeros up to the
virtual size (a whole MiB), then the fixed VHD footer, so the blob holds the same bytes
azrestore writes. The SDK reads the stream in 4 MiB chunks and skips all-zero chunks,
testing them byte by byte in Python. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any, cast

from azrestore.formats.sizes import virtual_size
from azrestore.formats.vhd import fixed_vhd_footer


class FixedVhdStream:
    """A read-only, forward-only file-like view: image bytes, zero padding, footer."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self.disk_size = os.fstat(self._file.fileno()).st_size
        self.virtual_size = virtual_size(self.disk_size)
        self._footer = fixed_vhd_footer(self.virtual_size)
        self.length = self.virtual_size + len(self._footer)
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.length - self._position
        size = min(size, self.length - self._position)
        if size <= 0:
            return b""
        pos = self._position
        if pos < self.disk_size:
            data = os.pread(self._file.fileno(), min(size, self.disk_size - pos), pos)
        elif pos < self.virtual_size:
            data = bytes(min(size, self.virtual_size - pos))
        else:
            start = pos - self.virtual_size
            data = self._footer[start : start + size]
        self._position += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._file.close()


async def _upload_aio(url: str, stream: FixedVhdStream, concurrency: int) -> None:
    from azure.storage.blob.aio import BlobClient

    async with BlobClient.from_blob_url(url) as blob:
        await blob.upload_blob(
            cast("IO[bytes]", stream),  # file-like enough: read, readable, seekable, tell
            length=stream.length,
            blob_type="PageBlob",
            max_concurrency=concurrency,
            overwrite=True,
        )


def _upload_sync(url: str, stream: FixedVhdStream, concurrency: int) -> None:
    from azure.storage.blob import BlobClient

    with BlobClient.from_blob_url(url) as blob:
        blob.upload_blob(
            cast("IO[bytes]", stream),
            length=stream.length,
            blob_type="PageBlob",
            max_concurrency=concurrency,
            overwrite=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--url", required=True, help="page blob URL with a SAS")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--api", choices=("aio", "sync"), default="aio")
    args = parser.parse_args(argv)

    stream = FixedVhdStream(args.image)
    start = time.perf_counter()
    try:
        if args.api == "aio":
            asyncio.run(_upload_aio(args.url, stream, args.concurrency))
        else:
            _upload_sync(args.url, stream, args.concurrency)
    finally:
        stream.close()
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "tool": "azure-storage-blob",
        "api": args.api,
        "concurrency": args.concurrency,
        "disk_size": stream.disk_size,
        "virtual_size": stream.virtual_size,
        "blob_size": stream.length,
        "seconds": round(seconds, 3),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
