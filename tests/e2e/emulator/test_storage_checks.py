"""The strict gateway keeps Azure's Put Page and Clear Page rules (ranges, sizes, digests)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
import anyio
import pytest
from azure.storage.blob import BlobServiceClient

from azrestore.emulator.storage import GatewayThread
from azrestore.formats.sizes import MiB
from tests.support.pages import (
    VERSION,
    assert_azure_error,
    crc64_b64,
    md5_b64,
    page_blob,
    put_page,
    written,
)

if TYPE_CHECKING:
    from tests.support.storage import StorageTarget

pytestmark = pytest.mark.anyio


async def test_put_page_accepted_lands(storage: StorageTarget, http: aiohttp.ClientSession) -> None:
    page_blob(storage, "ok", 8 * MiB)
    url = storage.sas_url("ok")
    full = os.urandom(4 * MiB)
    status, _, body = await put_page(http, url, full, 0, content_md5=md5_b64(full))
    assert status == 201, body
    small = os.urandom(1024)
    status, _, body = await put_page(http, url, small, 4 * MiB, x_ms_content_crc64=crc64_b64(small))
    assert status == 201, body
    status, _, body = await put_page(http, url, small, 8 * MiB - 1024)
    assert status == 201, body
    blob = storage.blob_client("ok")
    assert blob.download_blob(offset=0, length=4 * MiB).readall() == full
    assert blob.download_blob(offset=4 * MiB, length=1024).readall() == small
    assert blob.download_blob(offset=8 * MiB - 1024, length=1024).readall() == small


@pytest.mark.parametrize(
    ("case", "want", "code"),
    [
        ("too_large", 413, "RequestBodyTooLarge"),
        ("misaligned_start", 400, "InvalidHeaderValue"),
        ("misaligned_end", 400, "InvalidHeaderValue"),
        ("length_mismatch", 400, "InvalidHeaderValue"),
        ("past_end", 416, "InvalidPageRange"),
        ("straddles_end", 416, "InvalidPageRange"),
        ("wrong_md5", 400, "Md5Mismatch"),
        ("bad_md5", 400, "InvalidMd5"),
        ("wrong_crc64", 400, "Crc64Mismatch"),
        ("no_range", 400, "MissingRequiredHeader"),
        ("chunked", 411, "MissingContentLengthHeader"),
    ],
)
async def test_put_page_refused_like_azure(
    storage: StorageTarget,
    gateway: GatewayThread,
    http: aiohttp.ClientSession,
    case: str,
    want: int,
    code: str,
) -> None:
    size = 8 * MiB
    page_blob(storage, "b", size)
    url = storage.sas_url("b")
    data = os.urandom(1024)
    other = os.urandom(1024)
    if case == "too_large":
        big = os.urandom(4 * MiB + 512)
        result = await put_page(http, url, big, 0)
    elif case == "misaligned_start":
        result = await put_page(http, url, data, 100)
    elif case == "misaligned_end":
        result = await put_page(http, url, data[:1000], 0)
    elif case == "length_mismatch":
        result = await put_page(http, url, data, 0, 511)
    elif case == "past_end":
        result = await put_page(http, url, data, size)
    elif case == "straddles_end":  # Azurite itself writes this one
        result = await put_page(http, url, data, size - 512)
    elif case == "wrong_md5":
        result = await put_page(http, url, data, 0, content_md5=md5_b64(other))
    elif case == "bad_md5":
        result = await put_page(http, url, data, 0, content_md5="bm90LWFuLW1kNQ==")
    elif case == "wrong_crc64":
        result = await put_page(http, url, data, 0, x_ms_content_crc64=crc64_b64(other))
    elif case == "chunked":

        async def stream() -> AsyncIterator[bytes]:
            yield data

        result = await put_page(http, url, stream(), 0, 1023)
    else:
        async with http.put(
            f"{url}&comp=page", data=data, headers={**VERSION, "x-ms-page-write": "update"}
        ) as response:
            result = (response.status, dict(response.headers), await response.read())
    assert_azure_error(*result, want, code)
    assert written(storage, "b") == []
    stats = gateway.statistics()
    assert stats.rejections == {code: 1}
    assert stats.forwarded.get("PutPage", 0) == 0


async def test_put_page_cut_short_is_not_forwarded(
    storage: StorageTarget, gateway: GatewayThread, caplog: pytest.LogCaptureFixture
) -> None:
    page_blob(storage, "cut", 8 * MiB)
    target = storage.sas_url("cut").removeprefix(f"http://127.0.0.1:{gateway.port}")
    head = (
        f"PUT {target}&comp=page HTTP/1.1\r\nHost: 127.0.0.1\r\nx-ms-version: 2021-08-06\r\n"
        f"x-ms-page-write: update\r\nx-ms-range: bytes=0-{4 * MiB - 1}\r\n"
        f"Content-Length: {4 * MiB}\r\n\r\n"
    )
    async with await anyio.connect_tcp("127.0.0.1", gateway.port) as stream:
        await stream.send(head.encode() + b"c" * MiB)
        await anyio.sleep(0.2)
    for _ in range(50):
        if gateway.statistics().bytes_received.get("PutPage") == MiB:
            break
        await anyio.sleep(0.05)
    stats = gateway.statistics()
    assert stats.bytes_received == {"PutPage": MiB}
    assert stats.forwarded == {}
    assert written(storage, "cut") == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_clear_page_rules(storage: StorageTarget, http: aiohttp.ClientSession) -> None:
    page_blob(storage, "c", MiB)
    url = storage.sas_url("c")
    data = os.urandom(4096)
    assert (await put_page(http, url, data, 0))[0] == 201

    async def clear(start: int, end: int) -> tuple[int, dict[str, str], bytes]:
        headers = {**VERSION, "x-ms-page-write": "clear", "x-ms-range": f"bytes={start}-{end}"}
        async with http.put(f"{url}&comp=page", headers=headers) as response:
            return response.status, dict(response.headers), await response.read()

    assert_azure_error(*await clear(0, 1000), 400, "InvalidHeaderValue")
    assert_azure_error(*await clear(0, MiB + 511), 416, "InvalidPageRange")
    assert written(storage, "c") == [(0, 4095)]
    status, _, _ = await clear(0, 2047)
    assert status == 201
    assert written(storage, "c") == [(2048, 4095)]


async def test_put_page_missing_blob_is_azurite_404(
    storage: StorageTarget, http: aiohttp.ClientSession
) -> None:
    status, headers, _ = await put_page(http, storage.sas_url("absent"), b"x" * 512, 0)
    assert status == 404
    assert headers["x-ms-error-code"] == "BlobNotFound"


async def test_blob_size_follows_changes(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    data = os.urandom(512)
    page_blob(storage, "grow", MiB)  # created behind the gateway's back: it asks Azurite
    url = storage.sas_url("grow")
    assert (await put_page(http, url, data, 0))[0] == 201
    assert (await put_page(http, url, data, MiB))[0] == 416
    storage.blob_client("grow").resize_blob(2 * MiB)  # also behind its back
    assert (await put_page(http, url, data, MiB))[0] == 201
    with BlobServiceClient.from_connection_string(storage.connection_string) as service:
        blob = service.get_blob_client(storage.container, "grow")
        blob.resize_blob(3 * MiB)  # through the gateway (Set Blob Properties)
        assert (await put_page(http, url, data, 2 * MiB))[0] == 201
        blob.delete_blob()
        blob.create_page_blob(512)
        assert (await put_page(http, url, data, 512))[0] == 416
        assert (await put_page(http, url, data, 0))[0] == 201
    assert gateway.statistics().rejections == {"InvalidPageRange": 2}
