"""A page blob (or a managed disk's upload URL) as a :class:`PageSink`, over one aiohttp
session with reused connections. Put Page requests go straight to the REST API: the SDK's
per-request pipeline costs more CPU than the transfer itself on a 2-core machine."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from time import time

import aiohttp
from yarl import URL

from ..errors import AuthenticationExpired, InputError, SinkError, TargetExistsError
from ..redact import redact_text, redact_url
from ..transfer.config import Checksum
from .auth import BlobAuth, resolve_auth

API_VERSION = "2023-11-03"
#: Statuses worth another try (with backoff): timeouts, throttling, server errors.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Azure keeps idle connections longer, but Azurite closes them after 5 s; reusing a
#: closed one costs a failed request, so recycle just before that.
_KEEPALIVE_SECONDS = 4.0
_MESSAGE = re.compile(rb"<Message>(.*?)</Message>", re.S)


def _crc64(data: memoryview) -> bytes:
    from azure.storage.extensions.checksums import crc64

    # The extension takes only bytes objects (not memoryview), hence the copy.
    return int(crc64.compute(bytes(data), 0)).to_bytes(8, "little")


class _PageBody(aiohttp.BytesPayload):
    """A Put Page body sent straight from the chunk buffer, without a copy.

    BytesPayload warns about bodies over 1 MiB (it fears a blocking copy or compression);
    a memoryview of a pooled buffer written to the transport needs neither.
    """

    def __init__(self, value: memoryview) -> None:
        aiohttp.payload.Payload.__init__(self, value, content_type="application/octet-stream")
        self._size = value.nbytes


class PageBlobSink:
    """Writes pages of a page blob. Create it with :func:`open_page_blob`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        auth: BlobAuth,
        *,
        checksum: Checksum,
        overwrite: bool,
        existing: bool,
    ) -> None:
        self._session = session
        self._url = url
        self._auth = auth
        self._query = auth.query
        self.checksum = Checksum(checksum)
        self.overwrite = overwrite
        self.existing = existing
        sep = "&" if self._query else ""
        self._page_url = URL(f"{url}?comp=page{sep}{self._query}", encoded=True)
        self._blob_url = URL(f"{url}?{self._query}" if self._query else url, encoded=True)

    @property
    def description(self) -> str:
        return redact_url(self._url)

    @property
    def url(self) -> str:
        """The blob's URL without any query (no SAS)."""
        return self._url

    async def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        headers = {"x-ms-version": API_VERSION, **extra}
        headers.update(await self._auth.headers())
        return headers

    async def prepare(self, size: int) -> None:
        """Create the page blob of ``size`` bytes, or check an existing one's size."""
        if self.existing:
            await self._check_existing(size)
            return
        headers = {
            "x-ms-blob-type": "PageBlob",
            "x-ms-blob-content-length": str(size),
            "Content-Length": "0",
        }
        if not self.overwrite:
            headers["If-None-Match"] = "*"
        async with self._request("PUT", self._blob_url, "Create Blob", headers) as response:
            if response.status == 409 and response.headers.get("x-ms-error-code") in (
                "BlobAlreadyExists",
                None,
            ):
                raise TargetExistsError(
                    f"{self.description}: blob already exists (use --overwrite to replace it)"
                )
            await self._raise_for_status(response, "Create Blob")

    async def _check_existing(self, size: int) -> None:
        async with self._request("HEAD", self._blob_url, "Get Blob Properties", {}) as response:
            if response.status == 404:
                raise InputError(f"{self.description}: no such blob (drop --existing to create it)")
            await self._raise_for_status(response, "Get Blob Properties")
            kind = response.headers.get("x-ms-blob-type", "")
            length = int(response.headers.get("Content-Length", "-1"))
        if kind != "PageBlob":
            raise InputError(f"{self.description}: is a {kind or 'non-page'} blob, not a page blob")
        if length != size:
            raise InputError(
                f"{self.description}: the existing blob is {length} bytes; this disk needs"
                f" exactly {size} bytes (virtual size + 512)"
            )

    def digest(self, data: memoryview) -> bytes | None:
        if self.checksum is Checksum.MD5:
            return hashlib.md5(data, usedforsecurity=False).digest()
        if self.checksum is Checksum.CRC64:
            return _crc64(data)
        return None

    async def write(self, offset: int, data: memoryview, digest: bytes | None) -> None:
        end = offset + len(data) - 1
        headers = {
            "x-ms-page-write": "update",
            "x-ms-range": f"bytes={offset}-{end}",
            "Content-Length": str(len(data)),
        }
        if digest is not None:
            name = "Content-MD5" if self.checksum is Checksum.MD5 else "x-ms-content-crc64"
            headers[name] = base64.b64encode(digest).decode()
        what = f"Put Page bytes {offset}-{end}"
        body = _PageBody(data)
        async with self._request("PUT", self._page_url, what, headers, body) as response:
            await self._raise_for_status(response, what)

    @asynccontextmanager
    async def _request(
        self,
        method: str,
        url: URL,
        what: str,
        headers: dict[str, str],
        data: aiohttp.payload.Payload | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One HTTP request; connection-level failures become retryable SinkErrors."""
        try:
            async with self._session.request(
                method, url, headers=await self._headers(headers), data=data
            ) as response:
                yield response
        except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
            detail = redact_text(str(exc) or type(exc).__name__)
            raise SinkError(
                f"{self.description}: {what}: connection failed: {detail}", retryable=True
            ) from None

    async def _raise_for_status(self, response: aiohttp.ClientResponse, what: str) -> None:
        if response.status < 300:
            return
        code = response.headers.get("x-ms-error-code")
        body = await response.read() if method_has_body(response) else b""
        found = _MESSAGE.search(body)
        detail = found.group(1).decode(errors="replace").splitlines()[0] if found else ""
        message = f"{self.description}: {what}: {response.status} {code or response.reason}"
        if detail:
            message += f": {redact_text(detail)}"
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if response.status == 403 and code == "AuthenticationFailed":
            raise AuthenticationExpired(
                message + " (the SAS may have expired)",
                retryable=False,
                status=403,
                code=code,
            )
        raise SinkError(
            message,
            retryable=response.status in RETRYABLE_STATUSES,
            status=response.status,
            code=code,
            retry_after=retry_after,
        )


def method_has_body(response: aiohttp.ClientResponse) -> bool:
    return response.method != "HEAD"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


@asynccontextmanager
async def open_page_blob(
    url: str,
    *,
    connection_string: str | None = None,
    checksum: Checksum = Checksum.MD5,
    overwrite: bool = False,
    existing: bool = False,
    concurrency: int = 8,
) -> AsyncIterator[PageBlobSink]:
    """A :class:`PageBlobSink` for ``url`` with its own connection pool.

    Credentials: the URL's SAS; else the account key (or SAS) of ``connection_string`` or
    AZURE_STORAGE_CONNECTION_STRING; else Azure AD. With ``existing`` the blob must already
    exist with exactly the disk's VHD size (a managed disk's upload URL); otherwise it is
    created, and an existing blob is an error unless ``overwrite``.
    """
    bare_url, auth = resolve_auth(url, connection_string)
    connector = aiohttp.TCPConnector(limit=concurrency + 4, keepalive_timeout=_KEEPALIVE_SECONDS)
    session = aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        skip_auto_headers=("Content-Type",),
    )
    try:
        yield PageBlobSink(
            session, bare_url, auth, checksum=checksum, overwrite=overwrite, existing=existing
        )
    finally:
        await session.close()
        await auth.aclose()
