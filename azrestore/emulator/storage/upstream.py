"""The way to Azurite: the gateway's connection pool, and forwarding a request with its
headers and body bytes as they came (so SharedKey and SAS signatures stay valid), the answer
streamed back as it comes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from azrestore.emulator.storage.bodies import counted, replay
from azrestore.emulator.storage.errors import CODE_MESSAGES, STATUS_ERRORS, Rejection
from azrestore.emulator.storage.statistics import GatewayCounters

__all__ = ["Upstream"]

# aiohttp warns when sending raw bytes bigger than this.
_SLICE: Final = 1 << 20
_Body = bytes | AsyncIterator[bytes] | None
# Hop-by-hop headers (RFC 9110 7.6.1) and those the transport sets itself.
_HOP_HEADERS: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "expect",
    }
)
# Let no automatic header change what the client signed (SharedKey signs Content-Type).
_SKIP_AUTO: Final = frozenset({"Content-Type", "Accept", "Accept-Encoding", "User-Agent"})


class Upstream:
    """Azurite behind the gateway, at ``account_url`` (``http://127.0.0.1:P/devstoreaccount1``).

    :meth:`open` makes the connection pool; until then, and after :meth:`release`, requests
    get 503 ServerBusy.
    """

    def __init__(self, account_url: str, counters: GatewayCounters) -> None:
        parts = urlsplit(account_url.rstrip("/"))
        if not parts.scheme or not parts.netloc:
            raise ValueError(f"not an account URL: {account_url!r}")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.base_path = parts.path  # "/devstoreaccount1"
        self.account = parts.path.strip("/").split("/")[0] or parts.netloc.split(".")[0]
        self._counters = counters
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The open connection pool (for the gateway's own requests)."""
        if self._session is None:
            raise RuntimeError("the upstream connection pool is not open")
        return self._session

    def url(self, raw_path: str) -> URL:
        """The upstream URL of a raw (still encoded) path and query."""
        return URL(self.origin + raw_path, encoded=True)

    def open(self) -> None:
        """Make the connection pool."""
        # Azurite closes idle connections after 5 s: drop ours before it does.
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=2.0, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            read_bufsize=1 << 20,
            skip_auto_headers=_SKIP_AUTO,
        )

    def release(self) -> aiohttp.ClientSession | None:
        """Stop forwarding at once; the pool, for the caller to close."""
        session, self._session = self._session, None
        return session

    async def close(self) -> None:
        """Stop forwarding and close the pool."""
        session = self.release()
        if session is not None:
            await session.close()

    async def forward(
        self,
        request: web.BaseRequest,
        op: str,
        body: list[bytes] | None,
        observe: Callable[[aiohttp.ClientResponse], None],
    ) -> web.StreamResponse:
        """Send ``request`` on (``body``: its buffered chunks, or None to stream it), call
        ``observe`` with the upstream's answer, and stream that answer back."""
        session = self._session
        if session is None:
            raise Rejection(503, "ServerBusy", CODE_MESSAGES["ServerBusy"])
        headers = CIMultiDict(
            (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS
        )
        # Only a buffered (or empty) body can be sent twice.
        attempts = 2 if body is not None or not request.body_exists else 1

        def make_data() -> _Body:
            if body is not None:
                return body[0] if len(body) == 1 and len(body[0]) <= _SLICE else replay(body)
            if request.body_exists:
                return counted(request, op, self._counters.bytes_received)
            return None

        url = self.url(request.raw_path)
        self._counters.forwarded[op] += 1
        upstream = await self._send(session, request.method, url, headers, make_data, attempts)
        async with upstream:
            observe(upstream)
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_HEADERS:
                    response.headers.add(name, value)
            try:
                await response.prepare(request)
                if request.method != "HEAD":
                    async for chunk in upstream.content.iter_any():
                        await response.write(chunk)
                await response.write_eof()
            except (ConnectionError, aiohttp.ClientError):
                # Either side broke off mid-body.  If it was the upstream, the client must see
                # a broken response too; if it was the client, aborting costs nothing.
                if request.transport is not None:
                    request.transport.abort()
            return response

    @staticmethod
    async def _send(
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        headers: CIMultiDict[str],
        make_data: Callable[[], _Body],
        attempts: int,
    ) -> aiohttp.ClientResponse:
        for attempt in range(1, attempts + 1):
            try:
                return await session.request(
                    method, url, headers=headers, data=make_data(), allow_redirects=False
                )
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # A pooled connection the upstream closed meanwhile: try again if we can.
                if attempt < attempts:
                    continue
                raise Rejection(500, "InternalError", STATUS_ERRORS[500][1]) from exc
            except aiohttp.ClientError as exc:
                raise Rejection(500, "InternalError", STATUS_ERRORS[500][1]) from exc
        raise AssertionError("unreachable")
