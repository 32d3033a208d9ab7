"""A blob target whose SAS is granted again when it expires mid-transfer (a managed
disk's upload URL): one renewal for a burst of requests refused together."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from ..errors import AuthenticationExpired, InputError
from ..redact import redact_url
from ..transfer.sink import MAX_RENEWALS
from .auth import SasAuth, resolve_auth
from .blobrequests import BlobTarget
from .storageerrors import CredentialsExpired

_T = TypeVar("_T")
#: Grants fresh credentials: returns the target's URL with a new SAS.
CredentialRefresher = Callable[[], Awaitable[str]]


class RenewableTarget:
    """The :class:`BlobTarget` requests go to now (:attr:`current`), replaced by one with
    a fresh SAS from ``refresher`` when a request is refused as expired."""

    def __init__(self, target: BlobTarget, refresher: CredentialRefresher | None) -> None:
        self.current = target
        self._refresher = refresher
        self._lock = anyio.Lock()

    async def renew(self, error: AuthenticationExpired) -> bool:
        """Grant fresh credentials after ``error``; False when there is no refresher.
        Concurrent calls for the same failed credentials refresh once; the others return
        True when it is done."""
        if self._refresher is None:
            return False
        failed = error.generation if isinstance(error, CredentialsExpired) else None
        async with self._lock:
            if failed is not None and failed != self.current.generation:
                return True  # renewed meanwhile by another request's call
            fresh_url = await self._refresher()
            bare, auth = resolve_auth(fresh_url, None)
            if not isinstance(auth, SasAuth):
                await auth.aclose()
                raise InputError(f"{redact_url(bare)}: the renewed URL carries no SAS")
            self.current = BlobTarget(
                bare, auth, self.current.generation + 1, self.current.proxy_settings
            )
        return True

    async def renewing(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        """``operation()``, renewing expired credentials up to MAX_RENEWALS times (for the
        requests the transfer pipeline does not retry itself: reads, HEAD...)."""
        for _ in range(MAX_RENEWALS):
            try:
                return await operation()
            except AuthenticationExpired as error:
                if not await self.renew(error):
                    raise
        return await operation()
