"""A Put Page body goes out from the chunk buffer itself, after the headers on their own
(aiohttp would otherwise join headers and body into a copy of the whole body)."""

from __future__ import annotations

import anyio
import pytest

from azrestore.azure.pageblob import _PageBody


class RecordingWriter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def send_headers(self) -> None:
        self.calls.append(("headers", None))

    async def write(self, chunk: object) -> None:
        self.calls.append(("write", chunk))


@pytest.mark.parametrize("content_length", [None, 4096])
def test_headers_first_then_the_buffer_itself(content_length: int | None) -> None:
    buffer = bytearray(range(256)) * 64  # 16 KiB
    body = _PageBody(memoryview(buffer)[:8192])
    writer = RecordingWriter()
    anyio.run(lambda: body.write_with_length(writer, content_length))  # type: ignore[arg-type]
    assert [kind for kind, _ in writer.calls] == ["headers", "write"]
    sent = writer.calls[1][1]
    assert isinstance(sent, memoryview) and sent.obj is buffer  # no copy
    assert bytes(sent) == bytes(buffer[: content_length or 8192])
