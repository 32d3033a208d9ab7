"""The sink protocol: a fixed-size target written in 512-byte-aligned pages."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class PageSink(Protocol):
    """Where a disk goes: a page blob, a managed disk's upload URL, a test double.

    The pipeline calls :meth:`prepare` once, then :meth:`digest` (in a worker thread) and
    :meth:`write` for every request, the VHD footer last. ``write`` raises
    :class:`azrestore.errors.SinkError` with ``retryable`` set for the pipeline's retry
    policy; it must be idempotent for the same range and body.
    """

    @property
    def description(self) -> str:
        """A human-readable name for messages, with any secret redacted."""
        ...

    async def prepare(self, size: int) -> None:
        """Make the target ready to take ``size`` bytes (create it, or check its size)."""
        ...

    def digest(self, data: memoryview) -> bytes | None:
        """The integrity digest for one request body; thread-safe, called off the loop."""
        ...

    async def write(self, offset: int, data: memoryview, digest: bytes | None) -> None:
        """Write ``data`` at ``offset`` (both 512-aligned, at most 4 MiB, inside the target)."""
        ...
