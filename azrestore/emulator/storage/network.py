"""The gateway's network stage: each request first crosses the link (:mod:`.link`: its
round trip, its body's time on a capped link), then meets Azure's scalability targets
(:mod:`.targets`); one beyond them is answered 503 ServerBusy with Retry-After, as Azure
answers a request over a blob's or an account's targets.

:class:`NetworkModel` is the whole configuration (what ``--link``, ``--blob-targets`` and
``--account-targets`` say); :class:`NetworkStage` applies it to requests. The stage waits
with ``asyncio.sleep``, never blocking the loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from azrestore.emulator.storage.errors import Rejection, server_busy
from azrestore.emulator.storage.link import Link, LinkCounters, LinkModel
from azrestore.emulator.storage.targets import (
    ACCOUNT_PRESETS,
    BLOB_PRESETS,
    TargetCounters,
    TargetGuard,
    Targets,
    Throttle,
)

__all__ = ["NetworkModel", "NetworkStage"]

# Azure's ServerBusy messages: a partition (one blob) over its targets, and the account's
# ingress and request-rate limits (Azure Storage's common REST error codes).
_MESSAGES: Final = {
    "blob": "The server is currently unable to receive requests. Please retry your request.",
    "account-bytes": "Ingress is over the account limit.",
    "account-requests": "Operations per second is over the account limit.",
}


@dataclass(frozen=True)
class NetworkModel:
    """The link between client and gateway, and the targets per blob and per account.
    The default is loopback: no delay, no targets."""

    link: LinkModel = field(default_factory=LinkModel)
    blob_targets: Targets = field(default_factory=Targets)
    account_targets: Targets = field(default_factory=Targets)

    @classmethod
    def from_specs(
        cls,
        link: str | None = None,
        blob_targets: str | None = None,
        account_targets: str | None = None,
    ) -> NetworkModel:
        """The model the specs say (see :meth:`LinkModel.parse` and :meth:`Targets.parse`);
        one left out costs nothing. Raises :class:`~azrestore.errors.InputError`."""
        return cls(
            link=LinkModel.parse(link) if link is not None else LinkModel(),
            blob_targets=(
                Targets.parse(blob_targets, BLOB_PRESETS) if blob_targets is not None else Targets()
            ),
            account_targets=(
                Targets.parse(account_targets, ACCOUNT_PRESETS)
                if account_targets is not None
                else Targets()
            ),
        )

    @property
    def active(self) -> bool:
        """Whether the model changes anything."""
        return self.link.active or self.blob_targets.active or self.account_targets.active

    def describe(self) -> dict[str, str]:
        """The model in words: ``{"link", "blob_targets", "account_targets"}``."""
        return {
            "link": self.link.describe(),
            "blob_targets": self.blob_targets.describe(),
            "account_targets": self.account_targets.describe(),
        }


class NetworkStage:
    """A :class:`NetworkModel` at work for the gateway whose account path is
    ``account_path`` (``/devstoreaccount1``): requests to paths below a container are a
    blob's, the rest the account's. ``clock`` is in seconds (``time.monotonic``)."""

    def __init__(
        self,
        model: NetworkModel,
        account_path: str,
        link_counters: LinkCounters,
        target_counters: TargetCounters,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._account_path = account_path.rstrip("/")
        self._link_counters = link_counters
        self._target_counters = target_counters
        self._clock = clock
        self.set_model(model)

    @property
    def model(self) -> NetworkModel:
        """The model in force."""
        return self._model

    def set_model(self, model: NetworkModel) -> None:
        """Put ``model`` in force: the link starts idle and the buckets full."""
        self._model = model
        self._link = Link(model.link, self._link_counters, self._clock)
        self._guard = TargetGuard(
            model.blob_targets, model.account_targets, self._target_counters, self._clock
        )

    def blob_of(self, path: str) -> str | None:
        """The blob a request path names (``/account/container/blob...``), or None."""
        if not path.startswith(self._account_path + "/"):
            return None
        container, sep, name = path[len(self._account_path) + 1 :].partition("/")
        return path if container and sep and name else None

    async def cross(self, request: web.BaseRequest) -> Rejection | None:
        """Carry ``request`` over the link, then judge it by the targets: None when it may
        go on, else the 503 ServerBusy to answer (its body is still to be read)."""
        body = request.content_length or 0
        delay = self._link.delay(body)
        if delay > 0:
            await asyncio.sleep(delay)
        throttle = self._guard.admit(self.blob_of(request.path), body)
        if throttle is None:
            return None
        return _busy(throttle)


def _busy(throttle: Throttle) -> Rejection:
    message = _MESSAGES["blob" if throttle.scope == "blob" else throttle.key]
    return server_busy(message, throttle.retry_after)
