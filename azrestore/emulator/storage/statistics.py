"""What the gateway saw: live counters, and the :class:`GatewayStats` snapshot of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from azrestore.emulator.storage.link import LinkCounters
from azrestore.emulator.storage.targets import TargetCounters

__all__ = ["GatewayCounters", "GatewayStats"]


@dataclass(frozen=True)
class GatewayStats:
    """A snapshot of what the gateway saw since the last reset.

    ``requests`` and ``forwarded`` count requests per operation name, ``bytes_received`` the
    request-body bytes read per operation, ``faults`` fired faults per rule index (into the
    current rules) and ``faults_by_action`` per action, ``rejections`` the requests refused by
    Azure's rules per error code.

    The network stage's (:mod:`.network`): ``link_delayed`` requests the link delayed,
    ``link_rtt_seconds`` the round-trip seconds it added (jitter included),
    ``link_paced_bytes`` the body bytes it carried under its cap and
    ``link_pacing_seconds`` the seconds they waited for and took on it; ``admitted``
    requests per blob path that the targets let through, ``throttled`` those answered 503
    ServerBusy per target (``blob-requests``, ``blob-bytes``, ``account-requests``,
    ``account-bytes``), ``throttled_blobs`` those a blob's own targets refused, per blob.
    """

    requests: Mapping[str, int] = field(default_factory=dict)
    forwarded: Mapping[str, int] = field(default_factory=dict)
    bytes_received: Mapping[str, int] = field(default_factory=dict)
    faults: Mapping[int, int] = field(default_factory=dict)
    faults_by_action: Mapping[str, int] = field(default_factory=dict)
    rejections: Mapping[str, int] = field(default_factory=dict)
    link_delayed: int = 0
    link_rtt_seconds: float = 0.0
    link_paced_bytes: int = 0
    link_pacing_seconds: float = 0.0
    admitted: Mapping[str, int] = field(default_factory=dict)
    throttled: Mapping[str, int] = field(default_factory=dict)
    throttled_blobs: Mapping[str, int] = field(default_factory=dict)


class GatewayCounters:
    """The gateway's counters, updated as requests go through (see :class:`GatewayStats`)."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.forwarded: Counter[str] = Counter()
        self.bytes_received: Counter[str] = Counter()
        self.faults: Counter[int] = Counter()
        self.faults_by_action: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.link = LinkCounters()
        self.targets = TargetCounters()

    def snapshot(self) -> GatewayStats:
        """The counters as they are now."""
        return GatewayStats(
            requests=dict(self.requests),
            forwarded=dict(self.forwarded),
            bytes_received=dict(self.bytes_received),
            faults=dict(self.faults),
            faults_by_action=dict(self.faults_by_action),
            rejections=dict(self.rejections),
            link_delayed=self.link.delayed,
            link_rtt_seconds=self.link.rtt_seconds,
            link_paced_bytes=self.link.paced_bytes,
            link_pacing_seconds=self.link.pacing_seconds,
            admitted=dict(self.targets.admitted),
            throttled=dict(self.targets.throttled),
            throttled_blobs=dict(self.targets.throttled_blobs),
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
        self.link.reset()
        self.targets.reset()
