"""The concurrency controller on a fake clock and a simulated link: it grows to the knee
and no further, backs off on the account's 503s and on rising latency, keeps to its
ceiling and to a fixed N; a blob's own 503s back off only that disk. And the slots it
adjusts: FIFO, resizable, cancellable; memory stays within the limit times the chunk."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from azrestore.errors import SinkError, TransferError
from azrestore.formats.sizes import KiB, MiB
from azrestore.transfer.budget import TransferBudget
from azrestore.transfer.concurrency import CEILING, START, ConcurrencyController
from azrestore.transfer.config import TransferConfig
from azrestore.transfer.linkstats import LinkStats
from azrestore.transfer.pipeline import upload_disk
from azrestore.transfer.retry import backoff_delay
from azrestore.transfer.slots import SlotLimiter
from tests.support.images import expected_vhd_body, make_sparse_image
from tests.support.memory_sink import MemorySink

ACCOUNT_BUSY = SinkError(
    "blob: put page: 503 ServerBusy: Ingress is over the account limit.",
    retryable=True,
    status=503,
)
BLOB_BUSY = SinkError(
    "blob: put page: 503 ServerBusy: The server is currently unable to receive requests.",
    retryable=True,
    status=503,
)


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class SimulatedLink:
    """Requests of ``size`` bytes over a link of round trip ``rtt`` and ``capacity`` bytes
    per second: with ``n`` in flight, throughput is ``min(n * size / rtt, capacity)`` and
    each request takes ``n * size / throughput`` (Little's law: beyond the knee
    ``capacity * rtt / size``, requests only queue)."""

    rtt: float
    capacity: float
    size: int = 256 * KiB

    def knee(self) -> float:
        return self.capacity * self.rtt / self.size


def drive(
    controller: ConcurrencyController, link: SimulatedLink, clock: Clock, seconds: float
) -> list[int]:
    """Acknowledge requests as the link would carry them at the controller's limit (the
    uploads always have more to send), ticking the controller after each; the limits."""
    stats = controller.link
    limits = []
    end = clock.now + seconds
    while clock.now < end:
        n = controller.limit
        throughput = min(n * link.size / link.rtt, link.capacity)
        latency = n * link.size / throughput
        clock.now += link.size / throughput
        stats.acknowledged(clock.now - latency, link.size)
        controller.slots.saturated = True
        controller.tick()
        limits.append(controller.limit)
    return limits


def auto(ceiling: int = 64) -> tuple[ConcurrencyController, Clock]:
    clock = Clock()
    link = LinkStats(clock=clock)
    return ConcurrencyController(SlotLimiter(START), link, fixed=False, ceiling=ceiling), clock


def test_grows_to_the_knee_and_holds_there() -> None:
    controller, clock = auto()
    link = SimulatedLink(rtt=0.040, capacity=200 * MiB)  # knee: 32 requests in flight
    limits = drive(controller, link, clock, 30.0)
    assert limits[0] == START
    assert max(limits) >= link.knee()  # it found the link's knee...
    settled = limits[len(limits) // 2 :]
    assert all(link.knee() <= limit <= 2 * link.knee() for limit in settled), settled
    near = sum(limit <= 1.3 * link.knee() for limit in settled)  # but for brief probes
    assert near >= 0.8 * len(settled)
    # ...and kept at or past it: the link is full.
    assert controller.limit * link.size / link.rtt >= link.capacity


def test_a_longer_round_trip_gets_more_requests_in_flight() -> None:
    near, clock = auto()
    drive(near, SimulatedLink(rtt=0.005, capacity=200 * MiB), clock, 20.0)
    far, clock = auto()
    drive(far, SimulatedLink(rtt=0.040, capacity=200 * MiB), clock, 20.0)
    assert near.limit < far.limit and far.limit >= 32  # 32: the far link's knee


def test_keeps_to_the_ceiling() -> None:
    controller, clock = auto(ceiling=24)
    limits = drive(controller, SimulatedLink(rtt=0.150, capacity=10_000 * MiB), clock, 30.0)
    assert max(limits) == 24 and limits[-1] == 24


def test_backs_off_on_rising_latency() -> None:
    controller, clock = auto()
    drive(controller, SimulatedLink(rtt=0.040, capacity=200 * MiB), clock, 20.0)
    found = controller.limit
    slower = SimulatedLink(rtt=0.040, capacity=50 * MiB)  # knee: 8
    limits = drive(controller, slower, clock, 30.0)
    assert controller.limit < found
    # Down to where it started (not lower: on a loaded machine latency also grows with
    # the disks running), but for brief probes a step up.
    assert min(limits[len(limits) // 2 :]) == START <= 2 * slower.knee()
    assert max(limits[len(limits) // 2 :]) <= START * 1.25
    assert any(decision.reason == "latency" for decision in controller.history)


def test_backs_off_on_the_accounts_throttling_once_per_round_trip() -> None:
    controller, clock = auto()
    drive(controller, SimulatedLink(rtt=0.040, capacity=200 * MiB), clock, 20.0)
    before = controller.limit
    sent = clock.now - 0.040
    for _ in range(10):  # a burst of 503s for requests all sent before the first came back
        controller.throttled(sent)
    assert controller.limit == int(before * 0.7)
    clock.now += 0.1
    controller.throttled(clock.now - 0.040)  # sent after the decrease: counts again
    assert controller.limit == int(int(before * 0.7) * 0.7)
    assert controller.throttles == 11


def test_fixed_concurrency_stays_fixed() -> None:
    clock = Clock()
    budget = TransferBudget(16, 4 * MiB, link=LinkStats(clock=clock))
    drive(budget.controller, SimulatedLink(rtt=0.040, capacity=10_000 * MiB), clock, 10.0)
    budget.controller.throttled(clock.now)
    disk = budget.slots_for()
    disk.throttled(BLOB_BUSY, clock.now)
    assert budget.limit == 16 and disk.cap is None and budget.controller.history == []
    assert budget.memory == 16 * 4 * MiB


def test_a_blobs_throttling_backs_off_that_disk_alone() -> None:
    async def go() -> None:
        budget = TransferBudget(None, 4 * MiB, start=16)
        throttled, other = budget.slots_for(), budget.slots_for()
        for _ in range(8):
            await throttled.acquire()
        throttled.throttled(BLOB_BUSY, budget.link.now())
        assert throttled.cap == 4 and other.cap == CEILING and budget.limit == 16
        for _ in range(8):  # the other disk still gets every free shared slot
            await other.acquire()
        assert budget.slots.borrowed == 16
        other.throttled(ACCOUNT_BUSY, budget.link.now())  # the account's: everyone
        assert budget.limit == 11 and other.cap == CEILING

    anyio.run(go)


def test_a_throttled_disk_waits_on_its_own_cap_not_on_shared_slots() -> None:
    async def go() -> None:
        budget = TransferBudget(None, 4 * MiB, start=4)
        disk = budget.slots_for()
        await disk.acquire()
        await disk.acquire()
        disk.throttled(BLOB_BUSY, budget.link.now())  # cap: 1, two still out
        with anyio.move_on_after(0.05):
            await disk.acquire()
            pytest.fail("a throttled disk went past its cap")
        assert budget.slots.borrowed == 2  # the waiting disk holds no extra shared slot

    anyio.run(go)


def test_slots_are_handed_over_in_order_and_can_shrink_and_grow() -> None:
    async def go() -> None:
        slots = SlotLimiter(2)
        order: list[int] = []

        async def take(index: int) -> None:
            await slots.acquire()
            order.append(index)

        await slots.acquire()
        await slots.acquire()
        async with anyio.create_task_group() as tasks:
            for index in range(4):
                tasks.start_soon(take, index)
                await anyio.sleep(0.001)
            assert slots.statistics().waiting == 4
            slots.limit = 1  # two out, limit one: a release hands nothing on
            slots.release()
            await anyio.sleep(0.01)
            assert order == []
            slots.limit = 4  # now three waiters get theirs, first come first served
            await anyio.sleep(0.01)
            assert order == [0, 1, 2]
            slots.release()
        assert order == [0, 1, 2, 3]
        assert slots.statistics() == type(slots.statistics())(4, 4, 0, 4)

    anyio.run(go)


def test_a_cancelled_waiter_gives_its_place_back() -> None:
    async def go() -> None:
        slots = SlotLimiter(1)
        await slots.acquire()
        with anyio.move_on_after(0.01):
            await slots.acquire()
        assert slots.statistics().waiting == 0
        slots.release()
        await slots.acquire()
        assert slots.borrowed == 1

    anyio.run(go)


def test_memory_stays_within_the_limit_reached_times_the_chunk(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 48 * MiB, [(0, os.urandom(48 * MiB))])
    sink = MemorySink(delay=0.01)
    config = TransferConfig(chunk_size=512 * KiB, max_concurrency=40)
    budget = TransferBudget(None, config.chunk_size, ceiling=config.max_concurrency, start=4)
    result = anyio.run(lambda: upload_disk(image, sink, config=config, budget=budget))
    assert bytes(sink.blob[: 48 * MiB]) == expected_vhd_body(image)[: 48 * MiB]
    highest = max([4] + [decision.limit for decision in budget.controller.history])
    assert highest > 4  # a link of 10 ms and no cap: it grew
    assert budget.pool.allocated <= budget.pool.peak <= highest <= 40
    assert sink.peak_in_flight <= highest
    assert result.stats.in_flight_peak <= highest
    assert result.stats.in_flight_limit == budget.limit
    assert budget.memory == 40 * 512 * KiB


def test_a_throttled_answer_is_waited_for_as_long_as_it_asks() -> None:
    for attempt in range(1, 8):
        delay = backoff_delay(attempt, base=0.5, cap=30.0, retry_after=0.004, throttled=True)
        assert 0.004 <= delay <= 0.004 * (1 + 2 ** (attempt - 1))
    first = [backoff_delay(1, base=0.5, cap=30.0, retry_after=0.004, throttled=True)]
    assert max(first) <= 0.008  # not the 0.5 s backoff: within twice what it asked
    # other transient errors keep full jitter, Retry-After as a floor
    delays = [backoff_delay(4, base=0.5, cap=30.0, retry_after=0.004) for _ in range(50)]
    assert max(delays) > 0.5 and min(delays) >= 0.004


def test_throttled_answers_spend_a_budget_of_their_own(tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", MiB, [(0, b"x")])

    def busy(times: int) -> MemorySink:
        def fail(offset: int, length: int, attempt: int) -> SinkError | None:
            if attempt <= times:
                return SinkError("503 ServerBusy", retryable=True, status=503, retry_after=0.001)
            return None

        return MemorySink(fail=fail)

    config = TransferConfig(max_attempts=3, backoff_base=0.001, backoff_max=0.01)
    sink = busy(6)  # six 503s with a Retry-After: more than 3 attempts, and still fine
    anyio.run(lambda: upload_disk(image, sink, config=config))
    assert sink.attempts[0] == 7
    sink = busy(1000)
    with pytest.raises(TransferError, match="still throttled after 12 attempts"):
        anyio.run(lambda: upload_disk(image, sink, config=config))


def test_a_throttled_retry_never_comes_before_its_retry_after() -> None:
    """The Retry-After is a floor on the throttled path too, even past the backoff's cap,
    and a Retry-After of 0 still spreads the retries (they would go back to back)."""
    for attempt in range(1, 10):
        assert backoff_delay(attempt, base=0.5, cap=30.0, retry_after=60.0, throttled=True) == 60.0
    zero = [
        backoff_delay(3, base=0.5, cap=30.0, retry_after=0.0, throttled=True) for _ in range(50)
    ]
    assert all(0 <= delay <= 0.004 for delay in zero) and any(delay > 0 for delay in zero)
