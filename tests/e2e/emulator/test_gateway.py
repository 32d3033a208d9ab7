"""The strict gateway: Azure's Put Page rules, expired SAS, fault rules, streaming, statistics."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree

import aiohttp
import anyio
import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient
from azure.storage.extensions import checksums

from azrestore.emulator import azurite as azurite_module
from azrestore.emulator.azurite import AzuriteProcess, EmulatorError, find_azurite
from azrestore.emulator.gateway import (
    FaultRule,
    GatewayThread,
    StorageGateway,
    classify_operation,
)
from azrestore.errors import InputError
from azrestore.formats.sizes import MiB

if TYPE_CHECKING:
    from tests.support.storage import StorageTarget

VERSION = {"x-ms-version": "2021-08-06"}

pytestmark = pytest.mark.anyio


# -- helpers --------------------------------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        yield session


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def crc64_b64(data: bytes) -> str:
    return base64.b64encode(checksums.crc64.compute(data, 0).to_bytes(8, "little")).decode()


def page_blob(storage: StorageTarget, name: str, size: int) -> None:
    storage.blob_client(name).create_page_blob(size)


def written(storage: StorageTarget, name: str) -> list[tuple[int, int]]:
    """Written ranges, adjacent ones merged (Azure merges them, Azurite does not)."""
    merged: list[tuple[int, int]] = []
    for r in storage.blob_client(name).list_page_ranges():
        if r.cleared:
            continue
        assert r.start is not None and r.end is not None
        if merged and merged[-1][1] + 1 == r.start:
            merged[-1] = (merged[-1][0], r.end)
        else:
            merged.append((r.start, r.end))
    return merged


async def put_page(
    http: aiohttp.ClientSession,
    url: str,
    data: bytes | AsyncIterator[bytes],
    start: int,
    end: int | None = None,
    **headers: str,
) -> tuple[int, dict[str, str], bytes]:
    if end is None:
        assert isinstance(data, bytes)
        end = start + len(data) - 1
    all_headers = {
        **VERSION,
        "x-ms-page-write": "update",
        "x-ms-range": f"bytes={start}-{end}",
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    # aiohttp warns about raw bytes over 1 MiB.
    payload = io.BytesIO(data) if isinstance(data, bytes) and len(data) > MiB else data
    async with http.put(f"{url}&comp=page", data=payload, headers=all_headers) as response:
        return response.status, dict(response.headers), await response.read()


def error_code(body: bytes) -> str:
    assert body.startswith(b"\xef\xbb\xbf<?xml"), body[:40]
    root = ElementTree.fromstring(body[3:])
    assert root.tag == "Error"
    return root.findtext("Code") or ""


def assert_azure_error(
    status: int, headers: dict[str, str], body: bytes, want: int, code: str
) -> None:
    assert status == want, body
    assert headers["x-ms-error-code"] == code
    assert headers["x-ms-request-id"]
    assert error_code(body) == code


# -- pure units -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "query", "headers", "expected"),
    [
        ("PUT", {"comp": "page"}, {"x-ms-page-write": "update"}, "PutPage"),
        ("PUT", {"comp": "page"}, {"x-ms-page-write": "Clear"}, "ClearPage"),
        ("PUT", {}, {"x-ms-blob-type": "PageBlob"}, "PutBlob"),
        ("PUT", {"restype": "container"}, {}, "CreateContainer"),
        ("PUT", {"comp": "properties"}, {}, "Other"),
        ("GET", {"comp": "pagelist"}, {}, "GetPageRanges"),
        ("GET", {}, {}, "GetBlob"),
        ("HEAD", {}, {}, "GetBlobProperties"),
        ("DELETE", {}, {}, "DeleteBlob"),
        ("DELETE", {"restype": "container"}, {}, "Other"),
        ("GET", {"restype": "container", "comp": "list"}, {}, "Other"),
    ],
)
def test_classify_operation(
    method: str, query: dict[str, str], headers: dict[str, str], expected: str
) -> None:
    assert classify_operation(method, query, headers) == expected


def test_fault_rule_from_spec() -> None:
    rule = FaultRule.from_spec("PutPage:status=503,retry_after=1,nth=3")
    assert rule == FaultRule("PutPage", "status", status=503, retry_after=1.0, nth=3)
    assert rule.error_code == "ServerBusy"
    assert rule.limit == 1
    rule = FaultRule.from_spec("putpage:reset,rate=0.05,seed=7")
    assert (rule.operation, rule.action, rule.rate, rule.seed) == ("PutPage", "reset", 0.05, 7)
    assert rule.limit is None
    assert FaultRule.from_spec("*:delay=0.5,times=2") == FaultRule("*", "delay", delay=0.5, times=2)
    assert FaultRule.from_spec("GetBlob:expire_sas").error_code == "AuthenticationFailed"
    rule = FaultRule.from_spec("GetBlob:status=500,code=OperationTimedOut")
    assert rule.error_code == "OperationTimedOut"
    assert FaultRule.from_spec("PutPage:status=500").error_code == "InternalError"


@pytest.mark.parametrize(
    "spec",
    [
        "PutPage",
        "Nope:status=503",
        "PutPage:explode",
        "PutPage:status=abc",
        "PutPage:status=503,colour=red",
        "PutPage:rate=0.5",
        "PutPage:status=503,rate=2",
        "PutPage:status=503,nth=0",
        "PutPage:reset,times=-1",
    ],
)
def test_fault_rule_from_spec_rejects(spec: str) -> None:
    with pytest.raises(InputError):
        FaultRule.from_spec(spec)


def test_find_azurite_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AZRESTORE_AZURITE", str(tmp_path / "nothing"))
    monkeypatch.setattr(azurite_module, "_BUNDLED", tmp_path / "also-nothing")
    with pytest.raises(EmulatorError, match="make install"):
        find_azurite()


# -- Azure's rules for Put Page -------------------------------------------------------------


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


# -- SAS ------------------------------------------------------------------------------------


async def test_expired_sas_is_authentication_failed(
    storage: StorageTarget, azurite: AzuriteProcess, http: aiohttp.ClientSession
) -> None:
    page_blob(storage, "s", MiB)
    expired = storage.sas_url("s", expiry=timedelta(minutes=-5))
    status, headers, body = await put_page(http, expired, b"x" * 512, 0)
    assert_azure_error(status, headers, body, 403, "AuthenticationFailed")
    assert b"Signature not valid in the specified time frame" in body
    not_yet = storage.sas_url("s", start=datetime.now(UTC) + timedelta(hours=1))
    assert_azure_error(*await put_page(http, not_yet, b"x" * 512, 0), 403, "AuthenticationFailed")
    async with http.head(expired, headers=VERSION) as response:
        assert response.status == 403
        assert response.headers["x-ms-error-code"] == "AuthenticationFailed"
    assert written(storage, "s") == []
    # What Azurite says on its own (the reason the gateway exists).
    direct = expired.replace(storage.account_url, storage.direct_account_url)
    async with http.head(direct, headers=VERSION) as response:
        assert response.status == 403
        assert response.headers["x-ms-error-code"] == "AuthorizationFailure"


# -- fault rules ----------------------------------------------------------------------------


async def test_fault_nth_with_retry_after(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    page_blob(storage, "n", MiB)
    url = storage.sas_url("n")
    gateway.set_rules([FaultRule.from_spec("PutPage:status=503,retry_after=1,nth=3")])
    results = [await put_page(http, url, bytes([i]) * 512, i * 512) for i in range(5)]
    assert [status for status, _, _ in results] == [201, 201, 503, 201, 201]
    _, headers, body = results[2]
    assert_azure_error(503, headers, body, 503, "ServerBusy")
    assert headers["Retry-After"] == "1"
    assert written(storage, "n") == [(0, 1023), (1536, 2559)]
    stats = gateway.statistics()
    assert stats.faults == {0: 1}
    assert stats.faults_by_action == {"status": 1}
    assert stats.bytes_received["PutPage"] == 5 * 512


async def test_fault_times_and_fractional_retry_after(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    page_blob(storage, "t", MiB)
    url = storage.sas_url("t")
    gateway.set_rules([FaultRule("PutPage", "status", status=500, retry_after=0.25, times=2)])
    results = [await put_page(http, url, b"t" * 512, 0) for _ in range(4)]
    assert [status for status, _, _ in results] == [500, 500, 201, 201]
    _, headers, body = results[0]
    assert error_code(body) == "InternalError"
    assert headers["Retry-After"] == "1"
    assert headers["x-ms-retry-after-ms"] == "250"
    assert gateway.statistics().faults == {0: 2}


async def test_fault_rate_is_deterministic(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    page_blob(storage, "r", MiB)
    url = storage.sas_url("r")
    rng = random.Random(7)
    expected = [403 if rng.random() < 0.3 else 200 for _ in range(30)]
    assert 403 in expected and 200 in expected
    for _ in range(2):
        gateway.set_rules([FaultRule.from_spec("GetBlobProperties:expire_sas,rate=0.3,seed=7")])
        seen = []
        for _ in range(30):
            async with http.head(url, headers=VERSION) as response:
                seen.append(response.status)
                if response.status == 403:
                    assert response.headers["x-ms-error-code"] == "AuthenticationFailed"
        assert seen == expected
    assert gateway.statistics().faults_by_action == {"expire_sas": 2 * expected.count(403)}


async def test_fault_expire_sas(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    page_blob(storage, "e", MiB)
    gateway.set_rules([FaultRule("PutPage", "expire_sas")])
    result = await put_page(http, storage.sas_url("e"), b"e" * 512, 0)
    assert_azure_error(*result, 403, "AuthenticationFailed")
    assert written(storage, "e") == []


async def test_fault_delay(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    page_blob(storage, "d", MiB)
    url = storage.sas_url("d")
    gateway.set_rules([FaultRule("GetBlobProperties", "delay", delay=0.4, nth=2)])
    elapsed = []
    for _ in range(3):
        began = time.monotonic()
        async with http.head(url, headers=VERSION) as response:
            assert response.status == 200
        elapsed.append(time.monotonic() - began)
    assert elapsed[1] >= 0.4
    assert elapsed[0] < 0.4 and elapsed[2] < 0.4


async def test_fault_reset(
    storage: StorageTarget,
    gateway: GatewayThread,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    page_blob(storage, "x", 8 * MiB)
    url = storage.sas_url("x")
    # aiohttp itself retries an idempotent request once after a reset: reset every one.
    gateway.set_rules([FaultRule.from_spec("PutPage:reset")])
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await put_page(http, url, os.urandom(4 * MiB), 0)
    assert written(storage, "x") == []
    stats = gateway.statistics()
    resets = stats.faults_by_action["reset"]
    assert resets >= 1
    assert stats.forwarded == {}
    # Only part of each body was read before the reset.
    assert 0 < stats.bytes_received["PutPage"] < resets * 4 * MiB
    gateway.set_rules([FaultRule("GetBlob", "reset")])
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        async with http.get(url, headers=VERSION) as response:
            await response.read()
    gateway.set_rules([])
    assert (await put_page(http, url, b"x" * 512, 0))[0] == 201
    # The gateway takes its own resets in its stride.
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_first_matching_rule_wins(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    page_blob(storage, "w", MiB)
    url = storage.sas_url("w")
    gateway.set_rules(
        [
            FaultRule("GetBlobProperties", "status", status=500, nth=2),
            FaultRule("*", "status", status=503, times=2),
        ]
    )
    statuses = []
    for _ in range(4):
        async with http.head(url, headers=VERSION) as response:
            statuses.append(response.status)
    assert statuses == [503, 500, 503, 200]
    assert gateway.statistics().faults == {0: 1, 1: 2}


# -- streaming ------------------------------------------------------------------------------


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


# -- statistics -----------------------------------------------------------------------------


async def test_statistics_count_and_reset(
    storage: StorageTarget, gateway: GatewayThread, http: aiohttp.ClientSession
) -> None:
    page_blob(storage, "st", MiB)
    url = storage.sas_url("st")
    assert (await put_page(http, url, b"s" * 1024, 0))[0] == 201
    assert (await put_page(http, url, b"s" * 1000, 0))[0] == 400
    async with http.get(f"{url}&comp=pagelist", headers=VERSION) as response:
        assert response.status == 200
    async with http.delete(url, headers=VERSION) as response:
        assert response.status == 202
    stats = gateway.statistics()
    assert stats.requests == {"PutPage": 2, "GetPageRanges": 1, "DeleteBlob": 1}
    assert stats.forwarded == {"PutPage": 1, "GetPageRanges": 1, "DeleteBlob": 1}
    assert stats.bytes_received == {"PutPage": 2024}
    assert stats.rejections == {"InvalidHeaderValue": 1}
    assert stats.faults == {}
    gateway.reset_statistics()
    assert gateway.statistics().requests == {}


# -- lifecycles -----------------------------------------------------------------------------


async def test_gateway_in_the_callers_loop(azurite: AzuriteProcess) -> None:
    async with StorageGateway(azurite.account_url) as gateway:
        assert gateway.account_url.endswith("/devstoreaccount1")
        assert gateway.port != azurite.port
        list_url = gateway.account_url + "?comp=list"
        async with aiohttp.ClientSession() as session, session.get(list_url) as response:
            # No credentials: Azurite's refusal comes back through the gateway.
            assert response.status == 403
        assert gateway.statistics().requests == {"Other": 1}
    await gateway.aclose()  # idempotent


def test_gateway_thread_start_stop_idempotent(azurite: AzuriteProcess) -> None:
    thread = GatewayThread(azurite.account_url)
    thread.start()
    thread.start()
    url = thread.account_url
    thread.stop()
    thread.stop()
    with pytest.raises(RuntimeError):
        thread.statistics()
    assert url.startswith("http://127.0.0.1:")


async def test_azurite_process_lifecycle() -> None:
    try:
        find_azurite()
    except EmulatorError as exc:
        pytest.skip(str(exc))
    process = AzuriteProcess()
    async with process:
        port = process.port
        assert process.running
        assert process.account_url == f"http://127.0.0.1:{port}/devstoreaccount1"
        assert f"BlobEndpoint={process.account_url};" in process.connection_string
        with BlobServiceClient.from_connection_string(process.connection_string) as service:
            service.create_container("life")
            assert [c.name for c in service.list_containers()] == ["life"]
    assert not process.running
    process.stop()
    with pytest.raises(EmulatorError):
        _ = process.port
    with pytest.raises(OSError):
        await anyio.connect_tcp("127.0.0.1", port)


def test_gateway_command_line(storage: StorageTarget, azurite: AzuriteProcess) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "azrestore.emulator.gateway",
            "--upstream",
            azurite.account_url,
            "--rule",
            "GetBlobProperties:status=500,nth=1",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        url = ready["account_url"]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/devstoreaccount1")
        storage.blob_client("cli").create_page_blob(MiB)
        sas = storage.sas_url("cli").replace(storage.account_url, url)
        request = urllib.request.Request(sas, method="HEAD", headers=VERSION)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=30)
        assert info.value.code == 500
        info.value.close()
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
