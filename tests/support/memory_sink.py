"""An in-memory PageSink for pipeline tests: it enforces Put Page's rules like the service
and records every request, so tests can assert on what was sent and in what order."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from azrestore.errors import SinkError

MAX_PUT = 4 * 1024 * 1024


@dataclass
class Request:
    offset: int
    length: int
    digest: bytes | None


@dataclass
class MemorySink:
    """``fail`` decides per attempt: return a SinkError to raise it, or None to accept."""

    fail: Callable[[int, int, int], SinkError | None] | None = None
    delay: float = 0.0
    blob: bytearray = field(default_factory=bytearray)
    requests: list[Request] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)
    in_flight: int = 0
    peak_in_flight: int = 0
    prepared_size: int | None = None

    @property
    def description(self) -> str:
        return "memory://blob"

    async def prepare(self, size: int) -> None:
        self.prepared_size = size
        self.blob = bytearray(size)

    def digest(self, data: memoryview) -> bytes | None:
        return hashlib.md5(data).digest()

    async def write(self, offset: int, data: memoryview, digest: bytes | None) -> None:
        assert self.prepared_size is not None, "write before prepare"
        length = len(data)
        assert length > 0 and length <= MAX_PUT, f"request of {length} bytes"
        assert offset % 512 == 0 and length % 512 == 0, f"misaligned {offset}+{length}"
        assert offset + length <= self.prepared_size, "write past the end"
        assert digest == hashlib.md5(data).digest(), "digest does not match the body"
        attempt = self.attempts.get(offset, 0) + 1
        self.attempts[offset] = attempt
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.delay:
                await anyio.sleep(self.delay)
            if self.fail is not None and (error := self.fail(offset, length, attempt)):
                raise error
            self.blob[offset : offset + length] = data
            self.requests.append(Request(offset, length, digest))
        finally:
            self.in_flight -= 1
