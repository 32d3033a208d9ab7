"""A page blob (or a managed disk's upload URL) as a :class:`PageSink`, over one aiohttp
session with reused connections. Put Page requests go straight to the REST API: the SDK's
per-request pipeline costs more CPU than the transfer itself on a 2-core machine.

Many sinks can share one :class:`BlobSession` (one connection pool for a whole run of many
disks). The sink also reads back (Get Page Ranges, ranged Get Blob) for verification, says
what its blob is (size and creation time) for resume journals, and can be given a
``credential_refresher`` that grants access again when a SAS expires mid-upload."""

from __future__ import annotations

import base64
import hashlib
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from functools import partial
from time import time
from typing import TypeVar
from urllib.parse import quote

import aiohttp
import anyio
from aiohttp.abc import AbstractStreamWriter
from yarl import URL

from ..errors import AuthenticationExpired, InputError, SinkError, TargetExistsError
from ..redact import redact_text, redact_url
from ..transfer.config import DEFAULT_CONCURRENCY, Checksum
from ..transfer.sink import TargetIdentity
from .auth import BearerAuth, BlobAuth, SasAuth, resolve_auth

_T = TypeVar("_T")
#: Grants fresh credentials: returns the target's URL with a new SAS.
CredentialRefresher = Callable[[], Awaitable[str]]

API_VERSION = "2023-11-03"
#: Statuses worth another try (with backoff): timeouts, throttling, server errors.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Azure keeps idle connections longer, but Azurite closes them after 5 s; reusing a
#: closed one costs a failed request, so recycle just before that.
_KEEPALIVE_SECONDS = 4.0
_MESSAGE = re.compile(rb"<Message>(.*?)</Message>", re.S)


def crc64(data: memoryview | bytes) -> bytes:
    """Azure Storage's CRC64 of ``data`` as x-ms-content-crc64 carries it (8 bytes, little
    endian). Azure's polynomial and conventions are CRC-64/NVME's; awscrt computes that with
    carry-less multiplication, many times faster than azure-storage-extensions, which the
    strict gateway keeps as the reference (figures in docs/benchmarks.md)."""
    from awscrt.checksums import crc64nvme

    return int(crc64nvme(data)).to_bytes(8, "little")


class _PageBody(aiohttp.BytesPayload):
    """A Put Page body sent straight from the chunk buffer, without a copy, in the same
    write as the request's headers where the transport can gather them.

    BytesPayload warns about bodies over 1 MiB (it fears a blocking copy or compression);
    a memoryview of a pooled buffer written to the transport needs neither.
    """

    def __init__(self, value: memoryview) -> None:
        aiohttp.payload.Payload.__init__(self, value, content_type="application/octet-stream")
        self._size = value.nbytes

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        value = self._value if content_length is None else self._value[:content_length]
        if _AIOHTTP_GATHERS:
            # aiohttp sends its held-back headers and the body with one writelines.
            await writer.write(value)
            return
        if _write_with_headers(writer, value):
            await writer.drain()
            return
        # Older Pythons: aiohttp would join headers and body, b"".join((headers, body)), a
        # copy of the whole 4 MiB body per request (about a third of the busy samples of a
        # dense upload under py-spy). Send the headers on their own, then the body.
        send_headers = getattr(writer, "send_headers", None)
        if send_headers is not None:
            send_headers()
        await writer.write(value)


#: aiohttp joins headers and body into one bytes object on Python < 3.12.9 (whose
#: asyncio writelines it does not trust), and gathers them with writelines after that.
_AIOHTTP_GATHERS = not getattr(aiohttp.http_writer, "SKIP_WRITELINES", True)


def _write_with_headers(writer: AbstractStreamWriter, body: bytes | memoryview) -> bool:
    """Send aiohttp's held-back request headers and ``body`` in one gathered write (uvloop's
    writelines is a writev: no copy) and return True; False, having sent nothing, when the
    transport is not uvloop's or aiohttp's writer is not in the state this expects.

    Headers on their own go out as a segment of their own (TCP_NODELAY), which the
    server reads and parses on its own. Sent together, Azurite spends less CPU and the
    upload takes less time (figures in docs/benchmarks.md).
    """
    transport = writer.transport if hasattr(writer, "transport") else None
    headers = getattr(writer, "_headers_buf", None)
    if (
        transport is None
        or not type(transport).__module__.startswith("uvloop")
        or transport.is_closing()
        or not isinstance(headers, bytes)
        or getattr(writer, "_headers_written", True)
        or getattr(writer, "_compress", None) is not None
        or getattr(writer, "chunked", True)
        or writer.on_body_write is not None
        or writer.length not in (None, len(body))  # aiohttp's client leaves it None
    ):
        return False
    writer._headers_buf = None  # type: ignore[attr-defined]
    writer._headers_written = True  # type: ignore[attr-defined]
    if writer.length is not None:
        writer.length = 0
    writer.output_size += len(headers) + len(body)
    transport.writelines((headers, body))
    return True


class _Expired(AuthenticationExpired):
    """AuthenticationExpired that remembers which credentials failed, so that a burst of
    failures in flight leads to one renewal."""

    def __init__(self, message: str, generation: int) -> None:
        super().__init__(message, retryable=False, status=403, code="AuthenticationFailed")
        self.generation = generation


class PageBlobSink:
    """Writes (and reads back) pages of a page blob. Create it with :func:`open_page_blob`.

    ``credential_refresher``, when given, is awaited after a request is refused with 403
    AuthenticationFailed (an expired SAS): it returns the blob's URL with a fresh SAS (for
    a managed disk: grant access again), and the request is sent again. Failures of
    requests sent with the same credentials lead to one call.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        auth: BlobAuth,
        *,
        checksum: Checksum,
        overwrite: bool,
        existing: bool,
        credential_refresher: CredentialRefresher | None = None,
    ) -> None:
        self._session = session
        self._auth = auth
        self.checksum = Checksum(checksum)
        self.overwrite = overwrite
        self.existing = existing
        #: whether the blob reads as zeros everywhere after :meth:`prepare` (just created)
        self.fresh = False
        self._refresher = credential_refresher
        self._generation = 0
        self._renew_lock = anyio.Lock()
        self._set_target(url, auth.query)

    def _set_target(self, url: str, query: str) -> None:
        self._url = url
        self._query = query
        sep = "&" if query else ""
        self._page_url = URL(f"{url}?comp=page{sep}{query}", encoded=True)
        self._blob_url = URL(f"{url}?{query}" if query else url, encoded=True)
        self._list_url = f"{url}?comp=pagelist{sep}{query}"

    @property
    def description(self) -> str:
        return redact_url(self._url)

    @property
    def url(self) -> str:
        """The blob's URL without any query (no SAS)."""
        return self._url

    @property
    def target_key(self) -> str:
        """The name a resume journal files this blob under: its URL without the query."""
        return self._url

    async def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        headers = {"x-ms-version": API_VERSION, **extra}
        headers.update(await self._auth.headers())
        return headers

    async def prepare(self, size: int) -> None:
        """Create the page blob of ``size`` bytes, or check an existing one's size."""
        if self.existing:
            await self._check_existing(size)
            self.fresh = False
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
        self.fresh = True

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
            return crc64(data)
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
        generation = self._generation
        async with self._request("PUT", self._page_url, what, headers, body) as response:
            await self._raise_for_status(response, what, generation)

    # -- credentials ----------------------------------------------------------------------

    async def renew(self, error: AuthenticationExpired) -> bool:
        """Grant fresh credentials after ``error`` (see :class:`PageBlobSink`); False when
        there is no ``credential_refresher``. Concurrent calls for the same failed
        credentials refresh once; the others return True when it is done."""
        if self._refresher is None:
            return False
        failed = getattr(error, "generation", self._generation)
        async with self._renew_lock:
            if failed != self._generation:
                return True  # renewed meanwhile by another request's call
            fresh_url = await self._refresher()
            bare, auth = resolve_auth(fresh_url, None)
            if not isinstance(auth, SasAuth):
                await auth.aclose()
                raise InputError(f"{redact_url(bare)}: the renewed URL carries no SAS")
            self._auth = auth
            self._set_target(bare, auth.query)
            self._generation += 1
        return True

    async def _renewing(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """``operation()``, renewing expired credentials up to 3 times (reads, HEAD...)."""
        for _ in range(3):
            try:
                return await operation()
            except AuthenticationExpired as error:
                if not await self.renew(error):
                    raise
        return await operation()

    # -- identity and reading back ------------------------------------------------------------

    async def identity(self) -> TargetIdentity | None:
        """The blob's URL (no query), size and creation time; None if it does not exist."""

        async def head() -> TargetIdentity | None:
            generation = self._generation
            async with self._request("HEAD", self._blob_url, "Get Blob Properties", {}) as response:
                if response.status == 404:
                    return None
                await self._raise_for_status(response, "Get Blob Properties", generation)
                return TargetIdentity(
                    key=self._url,
                    size=int(response.headers.get("Content-Length", "-1")),
                    created=response.headers.get("x-ms-creation-time"),
                )

        return await self._renewing(head)

    async def target_size(self) -> int:
        """The blob's size; :class:`InputError` if it does not exist."""
        found = await self.identity()
        if found is None:
            raise InputError(f"{self.description}: no such blob")
        return found.size

    async def page_ranges(self, start: int, end: int) -> list[tuple[int, int]]:
        """``(start, end)`` of the written pages inside ``[start, end)`` (Get Page Ranges
        with a range, following NextMarker), clipped, sorted and merged."""
        ranges: list[tuple[int, int]] = []
        marker = ""
        while True:
            body = await self._renewing(partial(self._page_list, start, end, marker))
            root = ElementTree.fromstring(body)
            for item in root.iter("PageRange"):
                first = max(start, int(item.findtext("Start", "0")))
                last = min(end, int(item.findtext("End", "-1")) + 1)
                if first >= last:
                    continue
                if ranges and first <= ranges[-1][1]:
                    ranges[-1] = (ranges[-1][0], max(ranges[-1][1], last))
                else:
                    ranges.append((first, last))
            marker = (root.findtext("NextMarker") or "").strip()
            if not marker:
                break
        ranges.sort()
        merged: list[tuple[int, int]] = []
        for first, last in ranges:
            if merged and first <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        return merged

    async def _page_list(self, start: int, end: int, marker: str) -> bytes:
        url = self._list_url + (f"&marker={quote(marker, safe='')}" if marker else "")
        what = f"Get Page Ranges bytes {start}-{end - 1}"
        generation = self._generation
        headers = {"x-ms-range": f"bytes={start}-{end - 1}"}
        async with self._request("GET", URL(url, encoded=True), what, headers) as response:
            await self._raise_for_status(response, what, generation)
            return await self._read_body(response, what)

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` with the blob's bytes from ``offset`` (a ranged Get Blob)."""

        async def get() -> None:
            end = offset + len(buffer) - 1
            what = f"Get Blob bytes {offset}-{end}"
            generation = self._generation
            headers = {"x-ms-range": f"bytes={offset}-{end}"}
            async with self._request("GET", self._blob_url, what, headers) as response:
                await self._raise_for_status(response, what, generation)
                position = 0
                try:
                    async for chunk in response.content.iter_any():
                        size = min(len(chunk), len(buffer) - position)
                        buffer[position : position + size] = chunk[:size]
                        position += size
                except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                    raise SinkError(
                        f"{self.description}: {what}: connection failed: {exc}", retryable=True
                    ) from None
                if position != len(buffer):
                    raise SinkError(
                        f"{self.description}: {what}: got {position} bytes", retryable=True
                    )

        await self._renewing(get)

    async def _read_body(self, response: aiohttp.ClientResponse, what: str) -> bytes:
        try:
            return await response.read()
        except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
            raise SinkError(
                f"{self.description}: {what}: connection failed: {exc}", retryable=True
            ) from None

    async def clear(self, offset: int, length: int) -> None:
        """Zero ``[offset, offset + length)`` again (Put Page with x-ms-page-write: clear)."""

        async def put() -> None:
            end = offset + length - 1
            what = f"Clear Page bytes {offset}-{end}"
            headers = {
                "x-ms-page-write": "clear",
                "x-ms-range": f"bytes={offset}-{end}",
                "Content-Length": "0",
            }
            generation = self._generation
            async with self._request("PUT", self._page_url, what, headers) as response:
                await self._raise_for_status(response, what, generation)

        await self._renewing(put)

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

    async def _raise_for_status(
        self, response: aiohttp.ClientResponse, what: str, generation: int = -1
    ) -> None:
        if response.status < 300:
            return
        code = response.headers.get("x-ms-error-code")
        body = await response.read() if response.method != "HEAD" else b""
        found = _MESSAGE.search(body)
        detail = found.group(1).decode(errors="replace").splitlines()[0] if found else ""
        message = f"{self.description}: {what}: {response.status} {code or response.reason}"
        if detail:
            message += f": {redact_text(detail)}"
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if response.status == 403 and code == "AuthenticationFailed":
            raise _Expired(message + " (the SAS may have expired)", generation)
        raise SinkError(
            message,
            retryable=response.status in RETRYABLE_STATUSES,
            status=response.status,
            code=code,
            retry_after=retry_after,
        )


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


class BlobSession:
    """One aiohttp connection pool (and one Azure AD credential, when needed) for all the
    page blobs of a run. Create it with :func:`open_blob_session`."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.http = session
        self._bearer: BearerAuth | None = None

    def bearer(self, fresh: BearerAuth) -> BlobAuth:
        """The run's shared Azure AD auth (the first one given is kept, the rest closed
        by the caller)."""
        if self._bearer is None:
            self._bearer = fresh
        return self._bearer

    async def aclose(self) -> None:
        await self.http.close()
        if self._bearer is not None:
            await self._bearer.aclose()


def _client_session(concurrency: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency + 4, keepalive_timeout=_KEEPALIVE_SECONDS)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        skip_auto_headers=("Content-Type",),
    )


@asynccontextmanager
async def open_blob_session(concurrency: int = DEFAULT_CONCURRENCY) -> AsyncIterator[BlobSession]:
    """A connection pool of ``concurrency + 4`` connections for many :func:`open_page_blob`
    calls (pass it as ``session=``), closed on the way out."""
    session = BlobSession(_client_session(concurrency))
    try:
        yield session
    finally:
        with anyio.CancelScope(shield=True):
            await session.aclose()


@asynccontextmanager
async def open_page_blob(
    url: str,
    *,
    connection_string: str | None = None,
    checksum: Checksum = Checksum.CRC64,
    overwrite: bool = False,
    existing: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    session: BlobSession | None = None,
    credential_refresher: CredentialRefresher | None = None,
) -> AsyncIterator[PageBlobSink]:
    """A :class:`PageBlobSink` for ``url``, with its own connection pool or ``session``'s.

    Credentials: the URL's SAS; else the account key (or SAS) of ``connection_string`` or
    AZURE_STORAGE_CONNECTION_STRING; else Azure AD. With ``existing`` the blob must already
    exist with exactly the disk's VHD size (a managed disk's upload URL); otherwise it is
    created, and an existing blob is an error unless ``overwrite``. ``credential_refresher``
    returns the URL with a fresh SAS when the current one has expired (see
    :class:`PageBlobSink`).
    """
    bare_url, auth = resolve_auth(url, connection_string)
    own = session is None
    shared = session if session is not None else BlobSession(_client_session(concurrency))
    if isinstance(auth, BearerAuth) and not own:
        kept = shared.bearer(auth)
        if kept is not auth:
            await auth.aclose()
        auth = kept
    try:
        yield PageBlobSink(
            shared.http,
            bare_url,
            auth,
            checksum=checksum,
            overwrite=overwrite,
            existing=existing,
            credential_refresher=credential_refresher,
        )
    finally:
        if own:
            with anyio.CancelScope(shield=True):
                await shared.http.close()
                await auth.aclose()
