"""Request bodies as the gateway reads them: every byte counted per operation (the
``bytes_received`` statistic), whether it is drained, buffered or streamed on."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

from aiohttp import web

__all__ = ["counted", "drain", "replay"]


async def drain(request: web.BaseRequest, op: str, received: Counter[str]) -> None:
    """Read and discard what is left of the request body (so the client sees the answer)."""
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        async for chunk in request.content.iter_any():
            received[op] += len(chunk)


async def counted(
    request: web.BaseRequest, op: str, received: Counter[str]
) -> AsyncIterator[bytes]:
    """The request body as it arrives, counted."""
    async for chunk in request.content.iter_any():
        received[op] += len(chunk)
        yield chunk


async def replay(chunks: list[bytes]) -> AsyncIterator[bytes]:
    """A buffered body as it came, chunk by chunk (aiohttp warns about raw bytes over 1 MiB)."""
    for chunk in chunks:
        yield chunk
