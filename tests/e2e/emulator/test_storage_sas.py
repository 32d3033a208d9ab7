"""The strict gateway refuses a SAS outside its validity window as Azure does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import pytest

from azrestore.emulator.azurite import AzuriteProcess
from azrestore.formats.sizes import MiB
from tests.support.pages import VERSION, assert_azure_error, page_blob, put_page, written

if TYPE_CHECKING:
    from tests.support.storage import StorageTarget

pytestmark = pytest.mark.anyio


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
