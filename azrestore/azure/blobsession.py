"""The HTTP connection pool page blobs are written through, shared by the many disks of
a run, with the run's one Azure AD credential."""

from __future__ import annotations

import aiohttp

from .auth import BearerAuth, BlobAuth
from .proxy import ProxySettings

#: Azure keeps idle connections longer, but Azurite closes them after 5 s; reusing a
#: closed one costs a failed request, so recycle just before that.
_KEEPALIVE_SECONDS = 4.0


class BlobSession:
    """One aiohttp connection pool (and one Azure AD credential, when needed) for all the
    page blobs of a run. Open it with :func:`azrestore.azure.pageblob.open_blob_session`."""

    def __init__(self, session: aiohttp.ClientSession, proxy: ProxySettings | None = None) -> None:
        self.http = session
        #: the forward proxies its requests go through (per target URL), or None: direct
        self.proxy = proxy
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


def client_session(concurrency: int) -> aiohttp.ClientSession:
    """An aiohttp session of ``concurrency + 4`` connections that leaves bodies as they
    are (no decompression, no default Content-Type), 30 s to connect, no overall timeout.
    It reads no environment (no ``trust_env``): proxies are chosen per request."""
    connector = aiohttp.TCPConnector(limit=concurrency + 4, keepalive_timeout=_KEEPALIVE_SECONDS)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        skip_auto_headers=("Content-Type",),
    )
