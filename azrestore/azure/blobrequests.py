"""Requests to one blob's REST API: its URLs with the credentials' query, the headers
every request carries, and the request itself with connection failures translated.

Put Page requests go straight to the REST API: the SDK's per-request pipeline costs more
CPU than the transfer itself on a 2-core machine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

import aiohttp
from yarl import URL

from ..redact import redact_url
from .auth import BlobAuth
from .proxy import ProxySettings
from .storageerrors import connection_failures

API_VERSION = "2023-11-03"


class BlobTarget:
    """One blob's URL (no query) and the credentials its requests carry; ``generation``
    counts the renewals of those credentials (0 for the first ones)."""

    __slots__ = (
        "_list",
        "auth",
        "blob_url",
        "description",
        "generation",
        "page_url",
        "proxy",
        "proxy_settings",
        "url",
    )

    def __init__(
        self,
        url: str,
        auth: BlobAuth,
        generation: int = 0,
        proxy_settings: ProxySettings | None = None,
    ) -> None:
        self.url = url
        self.auth = auth
        self.generation = generation
        self.proxy_settings = proxy_settings
        #: the forward proxy its requests go through (with its credentials), or None
        self.proxy = proxy_settings.for_url(url) if proxy_settings is not None else None
        #: the URL for messages, with any secret redacted
        self.description = redact_url(url)
        query = auth.query
        sep = "&" if query else ""
        # Built once: a Put Page per chunk would otherwise parse its URL again.
        self.page_url = URL(f"{url}?comp=page{sep}{query}", encoded=True)
        self.blob_url = URL(f"{url}?{query}" if query else url, encoded=True)
        self._list = f"{url}?comp=pagelist{sep}{query}"

    def page_list_url(self, marker: str) -> URL:
        """Get Page Ranges' URL, going on from ``marker`` when it is not empty."""
        query = f"&marker={quote(marker, safe='')}" if marker else ""
        return URL(self._list + query, encoded=True)

    async def headers(self, extra: dict[str, str]) -> dict[str, str]:
        """``extra`` with the API version and the credentials' headers."""
        headers = {"x-ms-version": API_VERSION, **extra}
        headers.update(await self.auth.headers())
        return headers


@asynccontextmanager
async def send(
    session: aiohttp.ClientSession,
    target: BlobTarget,
    method: str,
    url: URL,
    what: str,
    headers: dict[str, str],
    data: aiohttp.payload.Payload | None = None,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """One request to ``target`` (``url`` is one of its URLs), its answer to read inside
    the block; a connection that fails meanwhile is a retryable SinkError."""
    with connection_failures(target.description, what):
        async with session.request(
            method, url, headers=await target.headers(headers), data=data, proxy=target.proxy
        ) as response:
            yield response
