"""The strict gateway refuses a SAS outside its validity window as Azure does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp
import anyio
import pytest

from azrestore.emulator.azurite import AzuriteProcess
from azrestore.formats.sizes import MiB
from tests.support.pages import VERSION, assert_azure_error, md5_b64, page_blob, put_page, written

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


async def test_sas_that_expires_while_its_body_arrives_is_authentication_failed(
    storage: StorageTarget, http: aiohttp.ClientSession
) -> None:
    # The gateway judges the SAS when the headers arrive; the body (buffered for its
    # Content-MD5) comes after the expiry, so Azurite, judging again, says
    # AuthorizationFailure. Azure judges once: the answer must be AuthenticationFailed,
    # the one a client renews its SAS on.
    page_blob(storage, "late", MiB)
    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    url = storage.sas_url("late", expiry=expiry)
    data = b"x" * 512

    async def late_body() -> AsyncIterator[bytes]:
        yield data[:256]  # aiohttp sends the headers with the first piece of the body
        await anyio.sleep((expiry - datetime.now(UTC)).total_seconds() + 1.5)
        yield data[256:]

    headers = {
        **VERSION,
        "x-ms-page-write": "update",
        "x-ms-range": "bytes=0-511",
        "Content-Length": "512",
        "Content-MD5": md5_b64(data),
    }
    async with http.put(f"{url}&comp=page", data=late_body(), headers=headers) as response:
        body = await response.read()
        assert_azure_error(response.status, response.headers, body, 403, "AuthenticationFailed")
    assert written(storage, "late") == []
