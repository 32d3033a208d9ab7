"""The request planner: which zero gaps an upload sends, from what a request and a byte
cost on the link it measures (round trip, per-byte time, throttling), not from a constant.

The rule. Data is sent as Put Page requests that start and end with non-zero data, at
most a chunk (4 MiB) each and never across the chunk grid. Between two pieces of data
lies a gap of zeros: a zero stretch inside data that is read anyway, or a hole of the
allocation map (which must be read to be sent; it reads as zeros). Sending the gap joins
the two pieces into one request; skipping it costs one more request. What each costs, in
seconds of the upload::

    request = max(round_trip / in_flight, 1 / requests_budget if throttled)
    byte    = max(1 / bytes_budget, seconds_per_byte / in_flight)
    balance = request / byte
    gap     = balance * balance / (balance + mean)    (send the gaps shorter than this)

- ``round_trip / in_flight``: the round trip a request pays, shared by the requests in
  flight with it (measured: the intercept of the link's latency against request size);
- ``1 / requests_budget``: a request's share of the blob's request budget (Azure's
  per-blob target, 500 requests/s for a standard page blob), from the first throttled
  answer on (503 ServerBusy, 429; measured): a budget met once is met again;
- ``byte``: a byte's share of the blob's byte budget (60 MiB/s), more where the link's
  latency shows it slower (the slope of latency against size, shared likewise);
- ``balance``: the request size at which an upload's requests and its bytes take equally
  long; ``mean``: the requests' measured mean size (throughput / request rate).

A request is worth ``balance`` bytes of zeros, weighed by the share of the upload's time
its requests take, ``balance / (balance + mean)``: an upload of small requests (an aged
file system's scattered runs) waits on its requests, so gaps up to nearly ``balance`` are
sent; one of large requests waits on its bytes (a dense disk, throttled at 60 MiB/s), so
hardly any. Sending more zeros makes the requests larger and the gap smaller again: it
settles where the upload's bytes and requests take about equally long, which is where
the least time lies.

The gap is bounded by the chunk size. Below the configured ``merge_gap`` (64 KiB, the
loopback rule of :mod:`azrestore.formats.zeros`), today's rule stands as it was: zero
stretches under 64 KiB inside a read window are sent, holes never are. On loopback, where
a request costs next to nothing (``balance`` is a few KiB), exactly the same data is sent;
so it is before the link is measured (the first requests of a run). Above it, zero
stretches and holes shorter than the gap are sent: a throttled or distant link gets a
little more data in far fewer requests, and the gap follows the link as it is measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ..formats.sizes import SECTOR, KiB, MiB, round_down
from .linkstats import LinkStats

#: Azure's published targets for one standard page blob (AZURE-FACTS): requests per
#: second and bytes per second. A premium blob or a managed disk has more of both.
STANDARD_REQUESTS: Final = 500.0
STANDARD_BYTES: Final = 60.0 * MiB
#: The planner looks at the link again after this many more requests, and this many
#: seconds (a look costs about a millisecond: a few passes over the link's window).
REFRESH_REQUESTS: Final = 32
REFRESH_SECONDS: Final = 0.1


@dataclass(frozen=True, slots=True)
class LinkCosts:
    """What the link has shown so far (None: not measured yet); ``throttled``: whether
    any request was throttled yet (the budget, once met, is met again)."""

    round_trip: float | None
    seconds_per_byte: float | None
    throughput: float | None
    request_rate: float | None
    throttled: bool

    @classmethod
    def of(cls, link: LinkStats) -> LinkCosts:
        return cls(
            link.round_trip,
            link.seconds_per_byte,
            link.throughput,
            link.request_rate,
            link.throttles > 0,
        )


@dataclass(frozen=True, slots=True)
class Gaps:
    """The planner's decision: zero stretches inside a read window shorter than ``inner``
    are sent; holes between data extents shorter than ``hole`` are read and sent."""

    inner: int
    hole: int


def cost_gap(
    costs: LinkCosts,
    *,
    in_flight: int,
    requests_budget: float = STANDARD_REQUESTS,
    bytes_budget: float = STANDARD_BYTES,
) -> float | None:
    """The length of zeros that costs as much as one request (see the module), or None
    before the link's round trip is known."""
    if costs.round_trip is None:
        return None
    in_flight = max(1, in_flight)
    request = costs.round_trip / in_flight
    if costs.throttled:
        request = max(request, 1.0 / requests_budget)
    byte = 1.0 / bytes_budget
    if costs.seconds_per_byte is not None:
        byte = max(byte, costs.seconds_per_byte / in_flight)
    balance = request / byte
    mean = 0.0
    if costs.throughput is not None and costs.request_rate:
        mean = costs.throughput / costs.request_rate
    if balance + mean <= 0:  # a round trip measured as nothing: requests cost nothing
        return 0.0
    return balance * balance / (balance + mean)


def plan_gaps(
    costs: LinkCosts,
    *,
    in_flight: int,
    floor: int,
    ceiling: int,
    requests_budget: float = STANDARD_REQUESTS,
    bytes_budget: float = STANDARD_BYTES,
) -> Gaps:
    """The gaps to send given the link's ``costs``: today's rule (``floor`` inside
    windows, no holes) unless a request costs more than ``floor`` bytes of zeros; then the
    cost gap, 512-aligned and at most ``ceiling``, for both."""
    gap = cost_gap(
        costs, in_flight=in_flight, requests_budget=requests_budget, bytes_budget=bytes_budget
    )
    if gap is None or gap <= floor:
        return Gaps(floor, 0)
    sent = max(floor, round_down(int(min(gap, ceiling)), SECTOR))
    return Gaps(sent, sent)


class RequestPlanner:
    """:func:`plan_gaps` on a live :class:`LinkStats`, looked at again after
    :data:`REFRESH_REQUESTS` requests and :data:`REFRESH_SECONDS` (its estimates cost
    passes over its window);
    ``in_flight`` says how many requests are in flight at most (the budget's slots).
    Event loop thread only, as the link is."""

    def __init__(
        self,
        link: LinkStats,
        *,
        floor: int = 64 * KiB,
        ceiling: int = 4 * MiB,
        in_flight: Callable[[], int] = lambda: 16,
        requests_budget: float = STANDARD_REQUESTS,
        bytes_budget: float = STANDARD_BYTES,
    ) -> None:
        self.link = link
        self.floor = floor
        self.ceiling = ceiling
        self.in_flight = in_flight
        self.requests_budget = requests_budget
        self.bytes_budget = bytes_budget
        self._gaps = Gaps(floor, 0)
        self._seen = -REFRESH_REQUESTS
        self._at = -float("inf")

    def gaps(self) -> Gaps:
        """The gaps to send now."""
        seen = self.link.requests + self.link.throttles
        if seen - self._seen >= REFRESH_REQUESTS and self.link.now() - self._at >= REFRESH_SECONDS:
            self._seen, self._at = seen, self.link.now()
            self._gaps = plan_gaps(
                LinkCosts.of(self.link),
                in_flight=self.in_flight(),
                floor=self.floor,
                ceiling=self.ceiling,
                requests_budget=self.requests_budget,
                bytes_budget=self.bytes_budget,
            )
        return self._gaps
