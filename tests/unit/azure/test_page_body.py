"""A Put Page body goes out from the chunk buffer itself, never copied: in one gathered
write with the request's headers on uvloop (where writelines is a writev), else after
the headers on their own (aiohttp on Python < 3.12.9 would otherwise join headers and
body into a copy of the whole body)."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import anyio
import pytest
import uvloop

from azrestore.azure import pagebody
from azrestore.azure.pagebody import PageBody


class RecordingWriter:
    """A writer with no transport to gather on: the body must follow the headers."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def send_headers(self) -> None:
        self.calls.append(("headers", None))

    async def write(self, chunk: object) -> None:
        self.calls.append(("write", chunk))


@pytest.mark.parametrize("content_length", [None, 4096])
def test_without_gathering_headers_first_then_the_buffer_itself(
    content_length: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pagebody, "_AIOHTTP_GATHERS", False)
    buffer = bytearray(range(256)) * 64  # 16 KiB
    body = PageBody(memoryview(buffer)[:8192])
    writer = RecordingWriter()
    anyio.run(lambda: body.write_with_length(writer, content_length))  # type: ignore[arg-type]
    assert [kind for kind, _ in writer.calls] == ["headers", "write"]
    sent = writer.calls[1][1]
    assert isinstance(sent, memoryview) and sent.obj is buffer  # no copy
    assert bytes(sent) == bytes(buffer[: content_length or 8192])


def test_where_aiohttp_gathers_itself_the_body_goes_to_it_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pagebody, "_AIOHTTP_GATHERS", True)
    buffer = bytearray(8192)
    writer = RecordingWriter()
    anyio.run(lambda: PageBody(memoryview(buffer)).write_with_length(writer, None))  # type: ignore[arg-type]
    assert [kind for kind, _ in writer.calls] == ["write"]
    sent = writer.calls[0][1]
    assert isinstance(sent, memoryview) and sent.obj is buffer


def put_through_aiohttp(buffer: bytearray, *, loop: str) -> tuple[bytes, bytes, list[bool]]:
    """PUT ``buffer`` as a PageBody with a real aiohttp session to a loopback server on
    ``loop`` (uvloop or asyncio). Returns the request head and body the server read, and
    what each call of _write_with_headers returned."""
    taken: list[bool] = []
    real = pagebody._write_with_headers

    def spy(writer: object, body: bytes | memoryview) -> bool:
        done = real(writer, body)  # type: ignore[arg-type]
        taken.append(done)
        return done

    received: dict[str, bytes] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received["head"] = await reader.readuntil(b"\r\n\r\n")
        received["body"] = await reader.readexactly(len(buffer))
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.put(
                    f"http://127.0.0.1:{port}/disk.vhd?comp=page",
                    data=PageBody(memoryview(buffer)),
                    headers={"Content-Length": str(len(buffer))},
                ) as response,
            ):
                assert response.status == 201
        finally:
            server.close()
            await server.wait_closed()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pagebody, "_write_with_headers", spy)
        if loop == "uvloop":
            uvloop.run(main())
        else:
            asyncio.run(main())
    return received["head"], received["body"], taken


def test_on_uvloop_headers_and_body_leave_in_one_gathered_write() -> None:
    buffer = bytearray(os.urandom(3 * 1024 * 1024))
    head, body, taken = put_through_aiohttp(buffer, loop="uvloop")
    assert head.startswith(b"PUT /disk.vhd?comp=page HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 3145728\r\n" in head
    assert body == buffer
    # This installed aiohttp's writer is in the state _write_with_headers expects (a test
    # that fails when aiohttp changes its internals); where aiohttp gathers by itself,
    # it is not needed at all.
    assert taken == ([] if pagebody._AIOHTTP_GATHERS else [True])


def test_on_asyncio_the_request_is_whole_without_gathering() -> None:
    buffer = bytearray(os.urandom(1024 * 1024))
    head, body, taken = put_through_aiohttp(buffer, loop="asyncio")
    assert head.startswith(b"PUT /disk.vhd?comp=page HTTP/1.1\r\n")
    assert body == buffer
    assert taken == ([] if pagebody._AIOHTTP_GATHERS else [False])
