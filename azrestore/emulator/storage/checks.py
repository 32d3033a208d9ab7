"""Azure's request rules that Azurite does not keep, checked before a request goes on.

Container and blob names come first (:mod:`.names` has their table of answers): Azurite too
reads them before it authenticates (Azure's order is not documented).  Then the SAS, then Put
Page and Clear Page.

Put Page bodies (at most 4 MiB) are buffered to check them; every other body is streamed.
Error codes and statuses follow Azure's documentation and recorded Azure answers:

==========================================  ======  ===========================
Put Page body over 4 MiB                    413     RequestBodyTooLarge
range start/end not 512-aligned             400     InvalidHeaderValue
x-ms-range length != body length            400     InvalidHeaderValue
range past the blob's end                   416     InvalidPageRange
Content-MD5 not matching the body           400     Md5Mismatch
x-ms-content-crc64 not matching the body    400     Crc64Mismatch
malformed Content-MD5 / CRC64               400     InvalidMd5 / InvalidHeaderValue
missing x-ms-range                          400     MissingRequiredHeader
Put Page without Content-Length             411     MissingContentLengthHeader
SAS outside its validity (se / st)          403     AuthenticationFailed
==========================================  ======  ===========================
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Final

from aiohttp import web

from azrestore.emulator.storage.digests import check_digests
from azrestore.emulator.storage.errors import Rejection, body_too_large, invalid_header
from azrestore.emulator.storage.names import check_names
from azrestore.emulator.storage.sas import SasCheck, check_sas
from azrestore.emulator.storage.sizes import BlobSizes

__all__ = ["RequestChecks"]

MAX_PUT_PAGE: Final = 4 * 1024 * 1024
PAGE: Final = 512
_RANGE_RE: Final = re.compile(r"^\s*bytes\s*=\s*(\d+)\s*-\s*(\d+)\s*$")


class RequestChecks:
    """Azure's rules for one request: the names in its URL, its SAS, and Put Page / Clear Page
    ranges and bodies.

    ``account_path`` is the account's URL path (``/devstoreaccount1``), which request paths
    start with; ``received`` counts the body bytes read per operation; ``sas_check`` may
    refuse SAS requests the upstream would accept.
    """

    def __init__(
        self,
        sizes: BlobSizes,
        received: Counter[str],
        sas_check: SasCheck | None,
        account_path: str,
    ) -> None:
        self._sizes = sizes
        self._received = received
        self._sas_check = sas_check
        self._account_path = account_path.rstrip("/")

    async def check(
        self, request: web.BaseRequest, op: str, query: Mapping[str, str]
    ) -> list[bytes] | None:
        """Raise Azure's :class:`Rejection` for a request Azure refuses; the buffered body
        of a Put Page (None for others: their bodies are still to be read)."""
        self._check_names(request.raw_path.split("?", 1)[0], query)
        check_sas(op, request.path, query, self._sas_check)
        if op == "PutPage":
            return await self._check_put_page(request)
        if op == "ClearPage":
            await self._check_clear_page(request)
        return None

    def _check_names(self, raw_path: str, query: Mapping[str, str]) -> None:
        # Only this account's paths: another account's are Azurite's to answer.
        if raw_path == self._account_path or raw_path.startswith(self._account_path + "/"):
            check_names(raw_path[len(self._account_path) :], query)

    async def _check_put_page(self, request: web.BaseRequest) -> list[bytes]:
        """Check a Put Page as Azure does; its body (at most 4 MiB) as the chunks that came.

        Header checks come first, so a refused request costs no buffering.  The chunks are
        not joined: digests and forwarding take them one by one (a copy saved per request).
        """
        start, end = _page_range(request)
        declared = request.content_length
        if declared is None:
            raise Rejection(
                411, "MissingContentLengthHeader", "The Content-Length header was not specified."
            )
        if declared > MAX_PUT_PAGE:
            raise body_too_large()
        if start % PAGE or (end + 1) % PAGE:
            raise invalid_header("x-ms-range", f"bytes={start}-{end}")
        if end - start + 1 != declared:
            raise invalid_header("Content-Length", str(declared))
        await self._check_inside_blob(request, end)
        chunks: list[bytes] = []
        length = 0
        async for chunk in request.content.iter_any():
            chunks.append(chunk)
            length += len(chunk)
            self._received["PutPage"] += len(chunk)
        if length != declared:
            raise ConnectionResetError("the client sent less than its Content-Length")
        await check_digests(request.headers, chunks, length)
        return chunks

    async def _check_clear_page(self, request: web.BaseRequest) -> None:
        start, end = _page_range(request)
        if start % PAGE or (end + 1) % PAGE:
            raise invalid_header("x-ms-range", f"bytes={start}-{end}")
        if request.content_length:
            raise invalid_header("Content-Length", str(request.content_length))
        await self._check_inside_blob(request, end)

    async def _check_inside_blob(self, request: web.BaseRequest, end: int) -> None:
        size = self._sizes.cached(request)
        if size is None or end >= size:
            # Not known yet, or changed behind our back (written straight to Azurite).
            size = await self._sizes.look_up(request)
        if size is not None and end >= size:
            raise Rejection(416, "InvalidPageRange", "The page range specified is invalid.")


def _page_range(request: web.BaseRequest) -> tuple[int, int]:
    raw = request.headers.get("x-ms-range") or request.headers.get("Range")
    if raw is None:
        raise Rejection(
            400,
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified.",
            {"HeaderName": "x-ms-range"},
        )
    match = _RANGE_RE.match(raw)
    if match is None or int(match.group(2)) < int(match.group(1)):
        raise invalid_header("x-ms-range", raw)
    return int(match.group(1)), int(match.group(2))
