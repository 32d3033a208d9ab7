"""The strict gateway's fault rules: statuses with Retry-After, rates, expired SAS, delays,
resets."""

from __future__ import annotations

import logging
import os
import random
import time
from typing import TYPE_CHECKING

import aiohttp
import pytest

from azrestore.emulator.storage import FaultRule, GatewayThread
from azrestore.formats.sizes import MiB
from tests.support.pages import (
    VERSION,
    assert_azure_error,
    error_code,
    page_blob,
    put_page,
    written,
)

if TYPE_CHECKING:
    from tests.support.storage import StorageTarget

pytestmark = pytest.mark.anyio


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
