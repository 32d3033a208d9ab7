"""Forwarding through the strict gateway: signed SDK requests untouched, large bodies streamed."""

from __future__ import annotations

import hashlib
import os
import random
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import aiohttp
import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient

from azrestore.emulator.storage import GatewayThread
from azrestore.formats.sizes import MiB
from tests.support.pages import VERSION, written

if TYPE_CHECKING:
    from tests.support.storage import StorageTarget

pytestmark = pytest.mark.anyio


def test_sdk_through_gateway(storage: StorageTarget, gateway: GatewayThread) -> None:
    """SharedKey-signed SDK requests pass the gateway untouched; MD5 checked end to end."""
    data = os.urandom(3 * 512)
    with BlobServiceClient.from_connection_string(storage.connection_string) as service:
        blob = service.get_blob_client(storage.container, "sdk")
        blob.create_page_blob(MiB)
        blob.upload_page(data, offset=512, length=len(data), validate_content=True)
        assert blob.get_blob_properties().size == MiB
        assert blob.download_blob(offset=512, length=len(data)).readall() == data
        with pytest.raises(HttpResponseError) as info:
            blob.upload_page(data, offset=MiB - 1024, length=len(data))
        assert info.value.status_code == 416
        assert getattr(info.value, "error_code", None) == "InvalidPageRange"
    assert written(storage, "sdk") == [(512, 2047)]
    stats = gateway.statistics()
    assert stats.requests["PutBlob"] == 1
    assert stats.requests["PutPage"] == 2
    assert stats.forwarded["PutPage"] == 1
    assert stats.bytes_received["PutPage"] == 2 * len(data)


def _chunks(seed: int, total: int, size: int = MiB) -> Iterator[bytes]:
    rng = random.Random(seed)
    for _ in range(total // size):
        yield rng.randbytes(size)


async def test_large_blobs_stream_both_ways(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    total = 64 * MiB
    expected = hashlib.sha256()
    for chunk in _chunks(1, total):
        expected.update(chunk)

    async def body() -> AsyncIterator[bytes]:
        for chunk in _chunks(1, total):
            yield chunk

    # Put Blob of 64 MiB through the gateway, streamed (aiohttp sends it chunked).
    headers = {**VERSION, "x-ms-blob-type": "BlockBlob", "Content-Length": str(total)}
    async with http.put(storage.sas_url("big"), data=body(), headers=headers) as response:
        assert response.status == 201, await response.read()
    digest = hashlib.sha256()
    for chunk in storage.blob_client("big").download_blob().chunks():
        digest.update(chunk)
    assert digest.digest() == expected.digest()

    # Get Blob of 64 MiB through the gateway: never held whole in memory.
    tracemalloc.start()
    try:
        digest = hashlib.sha256()
        async with http.get(storage.sas_url("big"), headers=VERSION) as response:
            assert response.status == 200
            assert response.content_length == total
            async for chunk in response.content.iter_chunked(MiB):
                digest.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.digest() == expected.digest()
    assert peak < 24 * MiB
    stats = gateway.statistics()
    assert stats.bytes_received["PutBlob"] == total
    assert stats.requests["GetBlob"] == 1
