"""The sink protocol: a fixed-size target written in 512-byte-aligned pages, and the
optional capabilities a sink may add for resume, credential renewal and verification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..errors import AuthenticationExpired

#: Credential renewals (``sink.renew``) allowed per request before the error stands.
MAX_RENEWALS = 3


@runtime_checkable
class PageSink(Protocol):
    """Where a disk goes: a page blob, a managed disk's upload URL, a test double.

    The pipeline calls :meth:`prepare` once, then :meth:`digest` (in a worker thread) and
    :meth:`write` for every request, the VHD footer last. ``write`` raises
    :class:`azrestore.errors.SinkError` with ``retryable`` set for the pipeline's retry
    policy; it must be idempotent for the same range and body.

    Optional capabilities, found with ``getattr`` (a sink without them still works):

    - ``async identity() -> TargetIdentity``: what the target is *now* (after
      :meth:`prepare`); needed to resume with a journal (see :class:`ResumableSink`).
    - ``async renew(error) -> bool``: called when :meth:`write` raised
      :class:`~azrestore.errors.AuthenticationExpired` (an expired SAS, e.g. a managed
      disk's upload URL). Get fresh credentials and return True, and the request is sent
      again at once (at most :data:`MAX_RENEWALS` renewals per request); return False to
      let the error stand.
      Requests in flight fail together, so a burst of calls must lead to one refresh
      (see :class:`RenewableSink`).
    - ``fresh: bool`` and ``async clear(offset, length)``: whether the target read as zeros
      everywhere after :meth:`prepare` (True when it was just created), and how to zero a
      range again; used when ``--restart`` starts over on a target that was not re-created.
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


@dataclass(frozen=True, slots=True)
class TargetIdentity:
    """What a target is, for a journal to tell "the same blob" from "a re-created one".

    ``key`` names the target stably and without secrets (a blob URL without its query, or
    a managed disk's resource ID); ``created`` is something that changes when the target
    is re-created (a blob's ``x-ms-creation-time``), or None when the sink cannot tell.
    """

    key: str
    size: int
    created: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "size": self.size, "created": self.created}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TargetIdentity:
        created = data.get("created")
        return cls(str(data["key"]), int(data["size"]), None if created is None else str(created))


@runtime_checkable
class ResumableSink(PageSink, Protocol):
    """A sink that can say what its target is (for journals)."""

    async def identity(self) -> TargetIdentity:
        """The target's identity as it is now; the target must exist."""
        ...


@runtime_checkable
class RenewableSink(PageSink, Protocol):
    """A sink whose credentials can be granted again when they expire mid-transfer."""

    async def renew(self, error: AuthenticationExpired) -> bool:
        """Get fresh credentials after ``error``; True when a retry may succeed."""
        ...


@runtime_checkable
class ReadableTarget(Protocol):
    """A written target that can be read back (for verification)."""

    @property
    def description(self) -> str: ...

    async def target_size(self) -> int:
        """The target's size in bytes."""
        ...

    async def page_ranges(self, start: int, end: int) -> list[tuple[int, int]]:
        """``(start, end)`` of the written ranges that overlap ``[start, end)``, sorted,
        clipped to it, adjacent ones merged. Everything else reads as zeros."""
        ...

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` with the target's bytes from ``offset``."""
        ...
