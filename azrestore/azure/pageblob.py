"""A page blob (or a managed disk's upload URL) as a :class:`PageSink`, over one aiohttp
session with reused connections.

Many sinks can share one :class:`BlobSession` (one connection pool for a whole run of many
disks). A blob the sink creates can be leased for the upload (see :mod:`.leases`). The
sink also reads back (Get Page Ranges, ranged Get Blob) for verification, says
what its blob is (size and creation time) for resume journals, and can be given a
``credential_refresher`` that grants access again when a SAS expires mid-upload."""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import aiohttp
import anyio

from ..errors import AuthenticationExpired, InputError, SinkError, TargetExistsError
from ..formats.limits import page_blob_problem
from ..formats.sizes import FOOTER_SIZE
from ..transfer.config import DEFAULT_CONCURRENCY, Checksum
from ..transfer.sink import TargetIdentity
from .auth import BearerAuth, BlobAuth, resolve_auth
from .blobrequests import BlobTarget, send
from .blobsession import BlobSession, client_session
from .crc64 import crc64
from .leases import acquire_lease, lease_conflict, release_lease
from .pagebody import PageBody
from .proxy import ProxySettings
from .sasrenewal import CredentialRefresher, RenewableTarget
from .storageerrors import raise_for_status


class PageBlobSink:
    """Writes (and reads back) pages of a page blob. Create it with :func:`open_page_blob`.

    ``credential_refresher``, when given, is awaited after a request is refused with 403
    AuthenticationFailed (an expired SAS): it returns the blob's URL with a fresh SAS (for
    a managed disk: grant access again), and the request is sent again. Failures of
    requests sent with the same credentials lead to one call.

    ``lease``: whether the blob may be leased (:meth:`acquire_lease`, which a resume
    journal calls once the blob is prepared; an ``existing`` target, such as a managed
    disk's upload URL, is never leased); the id held (:attr:`lease_id`) goes with every
    write, and with Create Blob when it replaces a blob leased before.
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
        proxy: ProxySettings | None = None,
        lease: bool = True,
    ) -> None:
        self._session = session
        self._target = RenewableTarget(
            BlobTarget(url, auth, proxy_settings=proxy), credential_refresher
        )
        self.checksum = Checksum(checksum)
        self.overwrite = overwrite
        self.existing = existing
        #: whether the blob reads as zeros everywhere after :meth:`prepare` (just created)
        self.fresh = False
        self.leasing = lease and not existing
        #: the id of the lease held on the blob, sent with every write (None: no lease)
        self.lease_id: str | None = None

    @property
    def description(self) -> str:
        return self._target.current.description

    @property
    def url(self) -> str:
        """The blob's URL without any query (no SAS)."""
        return self._target.current.url

    @property
    def target_key(self) -> str:
        """The name a resume journal files this blob under: its URL without the query."""
        return self._target.current.url

    async def prepare(self, size: int) -> None:
        """Create the page blob of ``size`` bytes, or check an existing one's size. A
        blob over 8 TiB is refused before it is asked for (an existing blob, such as a
        managed disk's upload URL, may be larger: its size is checked instead)."""
        if self.existing:
            await self._check_existing(size)
            self.fresh = False
            return
        problem = page_blob_problem(size - FOOTER_SIZE)
        if problem is not None:
            raise InputError(f"{self.description}: {problem}")
        headers = {
            "x-ms-blob-type": "PageBlob",
            "x-ms-blob-content-length": str(size),
            "Content-Length": "0",
        }
        if not self.overwrite:
            headers["If-None-Match"] = "*"
        if self.lease_id is not None:
            headers["x-ms-lease-id"] = self.lease_id  # a blob this upload leased before
        target = self._target.current
        what = "Create Blob"
        async with send(self._session, target, "PUT", target.blob_url, what, headers) as response:
            conflict = lease_conflict(response, target)
            if conflict is not None:
                raise conflict
            if response.status == 409 and response.headers.get("x-ms-error-code") in (
                "BlobAlreadyExists",
                None,
            ):
                raise TargetExistsError(
                    f"{self.description}: blob already exists (use --overwrite to replace it)"
                )
            await raise_for_status(response, target.description, what)
        self.fresh = True

    async def acquire_lease(self, proposed: str | None) -> str | None:
        """Lease the blob (again) with id ``proposed`` (a journal's), or a new id; the id
        held, or None when this sink takes no lease or there is no blob.
        :class:`~azrestore.azure.leases.LeaseConflict` when someone else holds it."""
        if not self.leasing:
            return None

        async def acquire() -> str | None:
            return await acquire_lease(self._session, self._target.current, proposed)

        self.lease_id = await self._target.renewing(acquire)
        return self.lease_id

    async def release_lease(self) -> None:
        """Give up the lease held, if any (idempotent)."""
        lease_id = self.lease_id
        if lease_id is None:
            return

        async def release() -> None:
            await release_lease(self._session, self._target.current, lease_id)

        await self._target.renewing(release)
        self.lease_id = None

    async def _check_existing(self, size: int) -> None:
        target = self._target.current
        what = "Get Blob Properties"
        async with send(self._session, target, "HEAD", target.blob_url, what, {}) as response:
            if response.status == 404:
                raise InputError(f"{self.description}: no such blob (drop --existing to create it)")
            await raise_for_status(response, target.description, what)
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
        if self.lease_id is not None:
            headers["x-ms-lease-id"] = self.lease_id
        if digest is not None:
            name = "Content-MD5" if self.checksum is Checksum.MD5 else "x-ms-content-crc64"
            headers[name] = base64.b64encode(digest).decode()
        what = f"Put Page bytes {offset}-{end}"
        target = self._target.current
        body = PageBody(data)
        async with send(
            self._session, target, "PUT", target.page_url, what, headers, body
        ) as response:
            conflict = lease_conflict(response, target)
            if conflict is not None:
                raise conflict
            await raise_for_status(response, target.description, what, target.generation)

    async def renew(self, error: AuthenticationExpired) -> bool:
        """Grant fresh credentials after ``error`` (see :class:`PageBlobSink`); False when
        there is no ``credential_refresher``. Concurrent calls for the same failed
        credentials refresh once; the others return True when it is done."""
        return await self._target.renew(error)

    # -- identity and reading back ------------------------------------------------------------

    async def identity(self) -> TargetIdentity | None:
        """The blob's URL (no query), size and creation time; None if it does not exist."""

        async def head() -> TargetIdentity | None:
            target = self._target.current
            what = "Get Blob Properties"
            async with send(self._session, target, "HEAD", target.blob_url, what, {}) as response:
                if response.status == 404:
                    return None
                await raise_for_status(response, target.description, what, target.generation)
                return TargetIdentity(
                    key=target.url,
                    size=int(response.headers.get("Content-Length", "-1")),
                    created=response.headers.get("x-ms-creation-time"),
                )

        return await self._target.renewing(head)

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
            body = await self._target.renewing(partial(self._page_list, start, end, marker))
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
        target = self._target.current
        what = f"Get Page Ranges bytes {start}-{end - 1}"
        headers = {"x-ms-range": f"bytes={start}-{end - 1}"}
        url = target.page_list_url(marker)
        async with send(self._session, target, "GET", url, what, headers) as response:
            await raise_for_status(response, target.description, what, target.generation)
            return await response.read()

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` with the blob's bytes from ``offset`` (a ranged Get Blob)."""

        async def get() -> None:
            target = self._target.current
            end = offset + len(buffer) - 1
            what = f"Get Blob bytes {offset}-{end}"
            headers = {"x-ms-range": f"bytes={offset}-{end}"}
            async with send(
                self._session, target, "GET", target.blob_url, what, headers
            ) as response:
                await raise_for_status(response, target.description, what, target.generation)
                position = 0
                async for chunk in response.content.iter_any():
                    size = min(len(chunk), len(buffer) - position)
                    buffer[position : position + size] = chunk[:size]
                    position += size
                if position != len(buffer):
                    raise SinkError(
                        f"{target.description}: {what}: got {position} bytes", retryable=True
                    )

        await self._target.renewing(get)

    async def clear(self, offset: int, length: int) -> None:
        """Zero ``[offset, offset + length)`` again (Put Page with x-ms-page-write: clear)."""

        async def put() -> None:
            target = self._target.current
            end = offset + length - 1
            what = f"Clear Page bytes {offset}-{end}"
            headers = {
                "x-ms-page-write": "clear",
                "x-ms-range": f"bytes={offset}-{end}",
                "Content-Length": "0",
            }
            if self.lease_id is not None:
                headers["x-ms-lease-id"] = self.lease_id
            async with send(
                self._session, target, "PUT", target.page_url, what, headers
            ) as response:
                conflict = lease_conflict(response, target)
                if conflict is not None:
                    raise conflict
                await raise_for_status(response, target.description, what, target.generation)

        await self._target.renewing(put)


@asynccontextmanager
async def open_blob_session(
    concurrency: int = DEFAULT_CONCURRENCY, proxy: ProxySettings | None = None
) -> AsyncIterator[BlobSession]:
    """A connection pool of ``concurrency + 4`` connections for many :func:`open_page_blob`
    calls (pass it as ``session=``), through ``proxy`` where it applies, closed on the way
    out."""
    session = BlobSession(client_session(concurrency), proxy)
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
    proxy: ProxySettings | None = None,
    lease: bool = True,
) -> AsyncIterator[PageBlobSink]:
    """A :class:`PageBlobSink` for ``url``, with its own connection pool or ``session``'s.

    Credentials: the URL's SAS; else the account key (or SAS) of ``connection_string``;
    else Azure AD. The environment is not read: the command line passes its variables in.
    With ``existing`` the blob must already exist with exactly the disk's VHD size (a
    managed disk's upload URL); otherwise it is created, and an existing blob is an error
    unless ``overwrite``. ``credential_refresher``
    returns the URL with a fresh SAS when the current one has expired (see
    :class:`PageBlobSink`). Requests go through the forward proxy ``proxy`` names for the
    URL (``session``'s when one is given), else directly. ``lease``: a blob created here
    may be leased for the upload.
    """
    bare_url, auth = resolve_auth(url, connection_string)
    own = session is None
    shared = session if session is not None else BlobSession(client_session(concurrency), proxy)
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
            proxy=shared.proxy,
            lease=lease,
        )
    finally:
        if own:
            with anyio.CancelScope(shield=True):
                await shared.http.close()
                await auth.aclose()
