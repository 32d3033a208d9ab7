"""Page blob sizes, which Put Page's range checks need: cached from what goes through the
gateway, asked of Azurite (a signed HEAD) when not known or changed behind its back."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import hmac

import aiohttp
from aiohttp import web

from azrestore.emulator.storage.errors import API_VERSION
from azrestore.emulator.storage.upstream import Upstream

__all__ = ["BlobSizes"]


class BlobSizes:
    """Known page blob sizes by URL path; ``account_key`` signs the look-ups (SharedKey)."""

    def __init__(self, upstream: Upstream, account_key: str) -> None:
        self._upstream = upstream
        self._key = base64.b64decode(account_key)
        self._sizes: dict[str, int] = {}
        self._lookups: dict[str, asyncio.Future[int | None]] = {}

    def cached(self, request: web.BaseRequest) -> int | None:
        """The blob's size as last seen, if known."""
        return self._sizes.get(request.path)

    async def look_up(self, request: web.BaseRequest) -> int | None:
        """The page blob's size by a HEAD on the upstream (shared by concurrent callers)."""
        key = request.path
        pending = self._lookups.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._lookups[key] = future
        try:
            size = await self._head_size(request.raw_path.split("?", 1)[0])
            if size is not None:
                self._sizes[key] = size
            future.set_result(size)
            return size
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: a lone caller must not leave it unobserved
            raise
        finally:
            del self._lookups[key]

    async def _head_size(self, raw_path: str) -> int | None:
        session = self._upstream.session
        account = self._upstream.account
        now = email.utils.formatdate(usegmt=True)
        ms_headers = {"x-ms-date": now, "x-ms-version": API_VERSION}
        canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(ms_headers.items()))
        # SharedKey: VERB, 11 empty standard headers, x-ms-* headers, /account/path.
        to_sign = "HEAD\n" + "\n" * 11 + canonical_headers + f"/{account}{raw_path}"
        signature = base64.b64encode(
            hmac.new(self._key, to_sign.encode(), hashlib.sha256).digest()
        ).decode()
        headers = {**ms_headers, "Authorization": f"SharedKey {account}:{signature}"}
        url = self._upstream.url(raw_path)
        for attempt in range(2):
            try:
                async with session.head(url, headers=headers) as response:
                    if response.status != 200:
                        return None
                    if response.headers.get("x-ms-blob-type") != "PageBlob":
                        return None
                    return int(response.headers.get("Content-Length", "0"))
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                if attempt:
                    raise
        return None

    def note_forwarded(
        self, request: web.BaseRequest, op: str, response: aiohttp.ClientResponse
    ) -> None:
        """Keep the cache right after requests that create, resize or delete blobs."""
        key = request.path
        ok = 200 <= response.status < 300
        if op == "PutBlob":
            self._sizes.pop(key, None)
            length = request.headers.get("x-ms-blob-content-length")
            if ok and request.headers.get("x-ms-blob-type") == "PageBlob" and length:
                self._sizes[key] = int(length)
        elif op == "GetBlobProperties":
            if ok and response.headers.get("x-ms-blob-type") == "PageBlob":
                self._sizes[key] = int(response.headers.get("Content-Length", "0"))
        elif op == "DeleteBlob":
            self._sizes.pop(key, None)
        elif op == "Other" and request.method not in ("GET", "HEAD"):
            # Set Blob Properties (resize), Copy Blob, Delete Container, ...
            if request.path.rstrip("/").count("/") <= self._upstream.base_path.count("/") + 1:
                prefix = request.path.rstrip("/") + "/"
                for cached in [k for k in self._sizes if k.startswith(prefix)]:
                    del self._sizes[cached]
            self._sizes.pop(key, None)
            length = request.headers.get("x-ms-blob-content-length")
            if ok and length and request.query.get("comp") == "properties":
                self._sizes[key] = int(length)
