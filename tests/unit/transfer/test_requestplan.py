"""The request planner: its gap from the link's costs (today's rule on loopback-like
estimates, more zeros where requests are dear), and the requests it makes of a disk (read
windows joined over short holes, non-zero runs in each) covering every non-zero byte once,
512-aligned, at most a chunk, starting and ending on non-zero data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.formats.sizes import SECTOR, KiB, MiB
from azrestore.formats.zeros import nonzero_runs
from azrestore.transfer.chunking import read_windows
from azrestore.transfer.linkstats import MIN_SAMPLES, LinkStats
from azrestore.transfer.requestplan import (
    REFRESH_REQUESTS,
    REFRESH_SECONDS,
    Gaps,
    LinkCosts,
    RequestPlanner,
    cost_gap,
    plan_gaps,
)

FLOOR = 64 * KiB


def costs(
    round_trip: float | None,
    *,
    mean: float = 32 * KiB,
    rate: float = 400.0,
    throttled: bool = False,
    per_byte: float | None = None,
) -> LinkCosts:
    return LinkCosts(round_trip, per_byte, mean * rate, rate, throttled)


def test_before_the_link_is_measured_todays_rule_stands() -> None:
    assert cost_gap(costs(None), in_flight=16) is None
    assert plan_gaps(costs(None), in_flight=16, floor=FLOOR, ceiling=4 * MiB) == Gaps(FLOOR, 0)


@pytest.mark.parametrize("round_trip", [0.0, 0.0002, 0.001, 0.004])
@pytest.mark.parametrize("mean", [4 * KiB, 64 * KiB, 4 * MiB])
def test_loopback_like_estimates_give_todays_rule(round_trip: float, mean: float) -> None:
    # Requests of a few ms at most with 16 in flight, nothing throttled: a request is
    # worth a few KiB of zeros, under the 64 KiB rule, which stands as it was.
    gaps = plan_gaps(costs(round_trip, mean=mean), in_flight=16, floor=FLOOR, ceiling=4 * MiB)
    assert gaps == Gaps(FLOOR, 0)


def test_a_distant_link_sends_gaps_of_up_to_a_requests_worth() -> None:
    # 150 ms, 16 in flight: a request takes 9.4 ms of the upload, 560 KiB at 60 MiB/s.
    balance = 0.150 / 16 * 60 * MiB
    small = cost_gap(costs(0.150, mean=8 * KiB), in_flight=16)
    large = cost_gap(costs(0.150, mean=512 * KiB), in_flight=16)
    assert small is not None and large is not None
    assert 0.95 * balance < small < balance  # small requests: nearly a request's worth
    assert large < small  # the larger the requests already are, the fewer zeros added
    gaps = plan_gaps(costs(0.150, mean=8 * KiB), in_flight=16, floor=FLOOR, ceiling=4 * MiB)
    assert gaps.inner == gaps.hole > 500 * KiB and gaps.hole % SECTOR == 0
    # More requests in flight share the round trip: each costs less.
    assert cost_gap(costs(0.150, mean=8 * KiB), in_flight=64) < small  # type: ignore[operator]


def test_throttled_small_requests_count_the_blobs_request_budget() -> None:
    # 5 ms, 16 in flight: the round trip alone is worth 19 KiB; once throttled, a request
    # takes 1/500 s of the blob's budget, 123 KiB at 60 MiB/s.
    calm = plan_gaps(costs(0.005, mean=8 * KiB), in_flight=16, floor=FLOOR, ceiling=4 * MiB)
    assert calm == Gaps(FLOOR, 0)
    busy = plan_gaps(
        costs(0.005, mean=8 * KiB, throttled=True), in_flight=16, floor=FLOOR, ceiling=4 * MiB
    )
    assert 100 * KiB < busy.hole == busy.inner < 123 * KiB


def test_throttled_large_requests_send_no_more_zeros() -> None:
    # A dense disk throttled at 60 MiB/s: its bytes are what the blob runs out of.
    gaps = plan_gaps(
        costs(0.040, mean=4 * MiB, throttled=True), in_flight=16, floor=FLOOR, ceiling=4 * MiB
    )
    assert gaps == Gaps(FLOOR, 0)


def test_a_slow_link_makes_bytes_dearer() -> None:
    # 40 ms and 1 us a byte per request (1 MB/s each, 16 MB/s for 16): a byte costs more
    # than its share of the blob's 60 MiB/s, so fewer zeros are worth a request.
    fast = cost_gap(costs(0.040, mean=8 * KiB), in_flight=16)
    slow = cost_gap(costs(0.040, mean=8 * KiB, per_byte=1e-6), in_flight=16)
    assert fast is not None and slow is not None and slow < fast / 3


def test_the_gap_is_bounded_by_the_chunk() -> None:
    gaps = plan_gaps(costs(30.0, mean=512), in_flight=1, floor=FLOOR, ceiling=4 * MiB)
    assert gaps == Gaps(4 * MiB, 4 * MiB)


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def test_the_planner_follows_the_link_as_it_is_measured() -> None:
    clock = Clock()
    link = LinkStats(clock=clock)
    planner = RequestPlanner(link, floor=FLOOR, ceiling=4 * MiB, in_flight=lambda: 16)
    assert planner.gaps() == Gaps(FLOOR, 0)

    def feed(count: int, latency: float) -> None:
        for index in range(count):
            started = link.now()
            clock.now += latency / 16
            link.acknowledged(started - latency + latency / 16, 4096 * (1 + index % 8))

    feed(MIN_SAMPLES + REFRESH_REQUESTS, 0.150)
    distant = planner.gaps()
    assert distant.hole > 400 * KiB
    # Looked at again only after REFRESH_REQUESTS more requests and REFRESH_SECONDS.
    feed(REFRESH_REQUESTS - 1, 0.0005)
    clock.now += REFRESH_SECONDS
    assert planner.gaps() == distant
    feed(400, 0.0005)  # the window now holds loopback-like requests only
    assert planner.gaps() == Gaps(FLOOR, 0)


# -- the requests made of a disk -------------------------------------------------------------

CHUNK = 16 * KiB
BLOCK = 1024


@st.composite
def disks(draw: st.DrawFn) -> tuple[bytearray, list[tuple[int, int]]]:
    """A small disk: extents (some of them all zeros, some touching) with data in them,
    and zeros everywhere else."""
    size = draw(st.integers(1, 24)) * 4 * KiB
    disk = bytearray(size)
    extents: list[tuple[int, int]] = []
    position = 0
    while position < size:
        position += draw(st.integers(0, 12)) * SECTOR
        length = draw(st.integers(1, 24)) * SECTOR
        if position >= size:
            break
        length = min(length, size - position)
        extents.append((position, length))
        for _ in range(draw(st.integers(0, 3))):
            at = position + draw(st.integers(0, length - 1))
            disk[at] = draw(st.integers(1, 255))
        position += length
    return disk, extents


def planned_requests(
    disk: bytearray, extents: list[tuple[int, int]], gaps: Gaps
) -> list[tuple[int, int]]:
    """What the pipeline sends of ``disk`` with ``gaps``: read windows joined over holes
    shorter than ``gaps.hole``, and the non-zero runs of each with ``gaps.inner``."""
    requests = []
    windows = read_windows(
        extents,
        virtual_size=len(disk),
        chunk_size=CHUNK,
        join=lambda start, end: end - start < gaps.hole,
    )
    for window in windows:
        view = memoryview(disk)[window.offset : window.end]
        for start, end in nonzero_runs(view, BLOCK, gaps.inner):
            requests.append((window.offset + start, window.offset + end))
    return requests


def todays_requests(disk: bytearray, extents: list[tuple[int, int]]) -> list[tuple[int, int]]:
    requests = []
    for window in read_windows(extents, virtual_size=len(disk), chunk_size=CHUNK):
        view = memoryview(disk)[window.offset : window.end]
        for start, end in nonzero_runs(view, BLOCK, 2 * BLOCK):
            requests.append((window.offset + start, window.offset + end))
    return requests


@settings(max_examples=300, deadline=None)
@given(disks(), st.integers(0, 6), st.integers(0, 40))
def test_requests_cover_every_non_zero_byte_once(
    layout: tuple[bytearray, list[tuple[int, int]]], inner_blocks: int, hole_sectors: int
) -> None:
    disk, extents = layout
    gaps = Gaps(inner_blocks * BLOCK, hole_sectors * SECTOR)
    requests = planned_requests(disk, extents, gaps)
    covered = bytearray(len(disk))
    for start, end in requests:
        assert start % SECTOR == 0 and end % SECTOR == 0 and start < end
        assert end - start <= CHUNK and start // CHUNK == (end - 1) // CHUNK
        # Each starts and ends with non-zero data: its first and last blocks are not zero.
        assert any(disk[start : min(end, start + BLOCK)])
        assert any(disk[max(start, end - BLOCK) : end])
        for offset in range(start, end):
            covered[offset] += 1
    assert max(covered, default=0) <= 1
    assert all(covered[offset] for offset, byte in enumerate(disk) if byte)


@settings(max_examples=200, deadline=None)
@given(disks())
def test_todays_gaps_make_todays_requests(layout: tuple[bytearray, list[tuple[int, int]]]) -> None:
    disk, extents = layout
    assert planned_requests(disk, extents, Gaps(2 * BLOCK, 0)) == todays_requests(disk, extents)


def test_a_round_trip_measured_as_nothing_costs_no_gap() -> None:
    """A clock that did not move across a window: nothing to weigh, and no division."""
    assert cost_gap(LinkCosts(0.0, None, None, None, False), in_flight=16) == 0.0
