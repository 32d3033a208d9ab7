"""The strict gateway's statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import pytest

from azrestore.emulator.storage import GatewayThread
from azrestore.formats.sizes import MiB
from tests.support.pages import VERSION, page_blob, put_page

if TYPE_CHECKING:
    from tests.support.storage import StorageTarget

pytestmark = pytest.mark.anyio


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
