"""Raw page blob requests through the strict gateway, and checks of Azure's error answers
(the gateway's own tests use these)."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING
from xml.etree import ElementTree

import aiohttp
from azure.storage.blob import PageRange
from azure.storage.extensions import checksums

from azrestore.formats.sizes import MiB

if TYPE_CHECKING:
    from tests.support.storage import StorageTarget

VERSION = {"x-ms-version": "2021-08-06"}


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def crc64_b64(data: bytes) -> str:
    return base64.b64encode(checksums.crc64.compute(data, 0).to_bytes(8, "little")).decode()


def page_blob(storage: StorageTarget, name: str, size: int) -> None:
    storage.blob_client(name).create_page_blob(size)


def page_span(r: PageRange) -> tuple[int, int]:
    """A page range as ``(start, end)``, ``end`` exclusive (the SDK's is inclusive)."""
    assert r.start is not None and r.end is not None
    return r.start, r.end + 1


def written(storage: StorageTarget, name: str) -> list[tuple[int, int]]:
    """Written ranges, adjacent ones merged (Azure merges them, Azurite does not)."""
    merged: list[tuple[int, int]] = []
    for r in storage.blob_client(name).list_page_ranges():
        if r.cleared:
            continue
        assert r.start is not None and r.end is not None
        if merged and merged[-1][1] + 1 == r.start:
            merged[-1] = (merged[-1][0], r.end)
        else:
            merged.append((r.start, r.end))
    return merged


async def put_page(
    http: aiohttp.ClientSession,
    url: str,
    data: bytes | AsyncIterator[bytes],
    start: int,
    end: int | None = None,
    **headers: str,
) -> tuple[int, dict[str, str], bytes]:
    if end is None:
        assert isinstance(data, bytes)
        end = start + len(data) - 1
    all_headers = {
        **VERSION,
        "x-ms-page-write": "update",
        "x-ms-range": f"bytes={start}-{end}",
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    # aiohttp warns about raw bytes over 1 MiB.
    payload = io.BytesIO(data) if isinstance(data, bytes) and len(data) > MiB else data
    async with http.put(f"{url}&comp=page", data=payload, headers=all_headers) as response:
        return response.status, dict(response.headers), await response.read()


def error_code(body: bytes) -> str:
    assert body.startswith(b"\xef\xbb\xbf<?xml"), body[:40]
    root = ElementTree.fromstring(body[3:])
    assert root.tag == "Error"
    return root.findtext("Code") or ""


def assert_azure_error(
    status: int, headers: Mapping[str, str], body: bytes, want: int, code: str
) -> None:
    assert status == want, body
    assert headers["x-ms-error-code"] == code
    assert headers["x-ms-request-id"]
    assert error_code(body) == code
