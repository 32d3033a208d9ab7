"""What the gateway saw: live counters, and the :class:`GatewayStats` snapshot of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["GatewayCounters", "GatewayStats"]


@dataclass(frozen=True)
class GatewayStats:
    """A snapshot of what the gateway saw since the last reset.

    ``requests`` and ``forwarded`` count requests per operation name, ``bytes_received`` the
    request-body bytes read per operation, ``faults`` fired faults per rule index (into the
    current rules) and ``faults_by_action`` per action, ``rejections`` the requests refused by
    Azure's rules per error code.
    """

    requests: Mapping[str, int] = field(default_factory=dict)
    forwarded: Mapping[str, int] = field(default_factory=dict)
    bytes_received: Mapping[str, int] = field(default_factory=dict)
    faults: Mapping[int, int] = field(default_factory=dict)
    faults_by_action: Mapping[str, int] = field(default_factory=dict)
    rejections: Mapping[str, int] = field(default_factory=dict)


class GatewayCounters:
    """The gateway's counters, updated as requests go through (see :class:`GatewayStats`)."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.forwarded: Counter[str] = Counter()
        self.bytes_received: Counter[str] = Counter()
        self.faults: Counter[int] = Counter()
        self.faults_by_action: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()

    def snapshot(self) -> GatewayStats:
        """The counters as they are now."""
        return GatewayStats(
            requests=dict(self.requests),
            forwarded=dict(self.forwarded),
            bytes_received=dict(self.bytes_received),
            faults=dict(self.faults),
            faults_by_action=dict(self.faults_by_action),
            rejections=dict(self.rejections),
        )

    def reset(self) -> None:
        """Zero every counter."""
        for counter in (
            self.requests,
            self.forwarded,
            self.bytes_received,
            self.faults,
            self.faults_by_action,
            self.rejections,
        ):
            counter.clear()
