"""A page blob's lease (Lease Blob): one writer per blob, whatever machine or spelling of
its URL it comes from.

An upload that creates its blob takes an infinite lease on it right after (``x-ms-lease-
action: acquire``, ``x-ms-lease-duration: -1``) and sends its lease id with every write;
the id goes in the resume journal, so the same upload resumed takes the same lease again
(Azure accepts an acquire proposing the id already held). Anyone else is refused by Azure:
409 LeaseAlreadyPresent on acquire, 412 LeaseIdMissing on Put Blob (``--overwrite``) or
Put Page without the id, 412 LeaseIdMismatchWithBlobOperation with another one. Those
answers become :class:`LeaseConflict` (exit 2). The lease is released once the footer is
written. A managed disk's upload URL cannot be leased: sinks with ``existing`` targets
take no lease.
"""

from __future__ import annotations

import uuid

import aiohttp
from yarl import URL

from ..errors import SinkError
from .blobrequests import BlobTarget, send
from .storageerrors import raise_for_status

#: Azure's answers that mean someone else holds (or broke) the blob's lease.
LEASE_CODES = frozenset(
    {
        "LeaseAlreadyPresent",
        "LeaseIdMissing",
        "LeaseIdMismatchWithBlobOperation",
        "LeaseIdMismatchWithLeaseOperation",
        "LeaseLost",
        "LeaseNotPresentWithBlobOperation",
        "LeaseIsBreakingAndCannotBeAcquired",
        "LeaseIsBrokenAndCannotBeRenewed",
    }
)


class LeaseConflict(SinkError):
    """The blob is leased by another upload (or its lease was broken or taken): exit 2."""

    exit_code = 2

    def __init__(self, message: str, code: str | None, status: int) -> None:
        super().__init__(message, retryable=False, status=status, code=code)


def _lease_url(target: BlobTarget) -> URL:
    query = target.auth.query
    return URL(f"{target.url}?comp=lease{'&' if query else ''}{query}", encoded=True)


def lease_conflict(response: aiohttp.ClientResponse, target: BlobTarget) -> LeaseConflict | None:
    """The :class:`LeaseConflict` that ``response`` means, if it is one."""
    code = response.headers.get("x-ms-error-code")
    if response.status not in (409, 412) or code not in LEASE_CODES:
        return None
    url = target.description.split("?", 1)[0]
    if code in ("LeaseLost", "LeaseNotPresentWithBlobOperation"):
        what = "the lease this upload held on the blob was broken or has ended"
    else:
        what = "another upload holds a lease on this blob"
    return LeaseConflict(
        f"{target.description}: {what} ({response.status} {code}); if that upload is gone"
        " (its journal lost, or on another machine), break the lease with `az storage blob"
        f" lease break --blob-url {url}` (or the portal's Break lease) and run again",
        code,
        response.status,
    )


async def acquire_lease(
    session: aiohttp.ClientSession, target: BlobTarget, proposed: str | None
) -> str | None:
    """Take an infinite lease on ``target``'s blob, with the id ``proposed`` (taken again
    when it is the id already held) or a new one; the lease id, or None when there is no
    such blob. :class:`LeaseConflict` when another id holds it."""
    lease_id = proposed or str(uuid.uuid4())
    headers = {
        "x-ms-lease-action": "acquire",
        "x-ms-lease-duration": "-1",
        "x-ms-proposed-lease-id": lease_id,
        "Content-Length": "0",
    }
    what = "Lease Blob (acquire)"
    async with send(session, target, "PUT", _lease_url(target), what, headers) as response:
        if response.status == 404:
            return None
        conflict = lease_conflict(response, target)
        if conflict is not None:
            raise conflict
        await raise_for_status(response, target.description, what, target.generation)
        return response.headers.get("x-ms-lease-id") or lease_id


async def release_lease(session: aiohttp.ClientSession, target: BlobTarget, lease_id: str) -> None:
    """Give the lease ``lease_id`` up; nothing when it is no longer held (released,
    broken, or the blob gone)."""
    headers = {"x-ms-lease-action": "release", "x-ms-lease-id": lease_id, "Content-Length": "0"}
    what = "Lease Blob (release)"
    async with send(session, target, "PUT", _lease_url(target), what, headers) as response:
        if response.status in (404, 409):
            return
        await raise_for_status(response, target.description, what, target.generation)
