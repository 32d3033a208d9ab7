"""The strict gateway on the caller's event loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import pytest

from azrestore.emulator.azurite import AzuriteProcess
from azrestore.emulator.storage import StorageGateway

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.anyio


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
