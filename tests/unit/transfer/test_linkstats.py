"""The link's estimates from request outcomes, on a fake clock: a latency line fitted to
requests of several sizes gives the round trip and the per-byte time; throughput, request
rate and the throttled share follow the window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azrestore.transfer.linkstats import MIN_SAMPLES, LinkStats


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def feed(stats: LinkStats, clock: Clock, size: int, latency: float) -> None:
    started = stats.now()
    clock.now += latency
    stats.acknowledged(started, size)


def test_nothing_is_estimated_before_enough_requests() -> None:
    clock = Clock()
    stats = LinkStats(clock=clock)
    for _ in range(MIN_SAMPLES - 1):
        feed(stats, clock, 4096, 0.05)
    assert (stats.round_trip, stats.throughput, stats.request_rate) == (None, None, None)
    assert stats.throttled_share is None


def test_the_round_trip_and_per_byte_time_of_requests_of_several_sizes() -> None:
    clock = Clock()
    stats = LinkStats(clock=clock)
    # 40 ms a request plus 10 ns a byte (100 MB/s per request), one after another.
    for size in [4096, 65536, 1 << 20, 4 << 20] * 5:
        feed(stats, clock, size, 0.040 + size * 1e-8)
    assert stats.round_trip == pytest.approx(0.040)
    assert stats.seconds_per_byte == pytest.approx(1e-8)
    total = 5 * (4096 + 65536 + (1 << 20) + (4 << 20))
    elapsed = 20 * 0.040 + total * 1e-8
    assert stats.throughput == pytest.approx(total / elapsed)
    assert stats.request_rate == pytest.approx(20 / elapsed)


def test_requests_of_one_size_give_an_upper_bound_and_no_slope() -> None:
    clock = Clock()
    stats = LinkStats(clock=clock)
    for latency in [0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.11, 0.12, 0.13, 0.14]:
        feed(stats, clock, 4 << 20, latency)
    assert stats.round_trip == pytest.approx(0.06)  # the 10th percentile
    assert stats.seconds_per_byte is None


def test_throttled_answers_are_a_share_of_the_window_and_send_no_bytes() -> None:
    clock = Clock()
    stats = LinkStats(clock=clock, window=10)
    for _ in range(20):
        feed(stats, clock, 4096, 0.01)
    for _ in range(5):
        started = stats.now()
        clock.now += 0.01
        stats.throttled(started)
    assert stats.throttled_share == pytest.approx(0.5)
    assert (stats.requests, stats.throttles, stats.bytes) == (20, 5, 20 * 4096)


@given(
    st.lists(
        st.tuples(st.integers(0, 4 << 20), st.floats(0, 10, allow_nan=False)),
        min_size=0,
        max_size=300,
    )
)
def test_estimates_are_never_negative(outcomes: list[tuple[int, float]]) -> None:
    clock = Clock()
    stats = LinkStats(clock=clock, window=64)
    for size, latency in outcomes:
        feed(stats, clock, size, latency)
        for value in (stats.round_trip, stats.seconds_per_byte, stats.throughput):
            assert value is None or value >= 0
