"""A strict storage gateway in front of Azurite: Azure's rules, plus fault injection.

Azurite accepts requests that Azure refuses (Put Page over 4 MiB, writes past the blob's end,
a wrong Content-MD5, a blob name over 1,024 characters, ...) and answers an expired SAS with a
different code.  The gateway sits between a client and Azurite, refuses what Azure refuses
with Azure's status, ``x-ms-error-code`` and XML error body, and forwards everything else
unchanged (headers and body bytes as they came, so SharedKey and SAS signatures stay valid).
It can also inject faults by rule: error statuses with ``Retry-After``, connection resets
mid-request, delays, and expired-SAS answers; and it can behave like a real link to Azure:
a round trip per request, a bandwidth cap, and Azure's scalability targets per blob and per
account, answered 503 ServerBusy with Retry-After when exceeded.

Each request goes through the stages of :class:`StorageGateway` in turn: its operation
(:mod:`.operations`), the link and targets (:mod:`.network`, with :mod:`.link`,
:mod:`.targets` and :mod:`.units`), fault rules (:mod:`.faults`), Azure's checks
(:mod:`.checks`, with :mod:`.names`, :mod:`.sas` and :mod:`.digests`), then on to Azurite
(:mod:`.upstream`);
:mod:`.statistics` counts what it saw.  :class:`GatewayThread` runs one on its own thread;
``python -m azrestore.emulator.storage`` runs one as a process.

The names below load on first use, so that ``from azrestore.emulator.storage import
SasRefusal`` (the simulator's hook answer) loads only what that name needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

if TYPE_CHECKING:
    from azrestore.emulator.storage.faults import FaultAction, FaultRule
    from azrestore.emulator.storage.link import LinkModel
    from azrestore.emulator.storage.network import NetworkModel
    from azrestore.emulator.storage.operations import OPERATIONS, classify_operation
    from azrestore.emulator.storage.sas import SasCheck, SasRefusal
    from azrestore.emulator.storage.server import StorageGateway
    from azrestore.emulator.storage.statistics import GatewayStats
    from azrestore.emulator.storage.targets import Targets
    from azrestore.emulator.storage.thread import GatewayThread

__all__ = [
    "OPERATIONS",
    "FaultAction",
    "FaultRule",
    "GatewayStats",
    "GatewayThread",
    "LinkModel",
    "NetworkModel",
    "SasCheck",
    "SasRefusal",
    "StorageGateway",
    "Targets",
    "classify_operation",
]

_HOMES = {
    "OPERATIONS": ".operations",
    "classify_operation": ".operations",
    "FaultAction": ".faults",
    "FaultRule": ".faults",
    "GatewayStats": ".statistics",
    "GatewayThread": ".thread",
    "LinkModel": ".link",
    "NetworkModel": ".network",
    "Targets": ".targets",
    "SasCheck": ".sas",
    "SasRefusal": ".sas",
    "StorageGateway": ".server",
}

__getattr__ = lazy_exports(__name__, globals(), _HOMES)
