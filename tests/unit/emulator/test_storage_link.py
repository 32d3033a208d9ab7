"""The gateway's link model and scalability targets, on a fake clock: the specs, the token
buckets, the link's round trips and its shared cap, and the Retry-After the answer carries."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azrestore.emulator.storage.errors import retry_after_headers
from azrestore.emulator.storage.link import Link, LinkCounters, LinkModel
from azrestore.emulator.storage.network import NetworkModel, NetworkStage
from azrestore.emulator.storage.targets import (
    ACCOUNT_PRESETS,
    BLOB_PRESETS,
    TargetCounters,
    TargetGuard,
    Targets,
    TokenBucket,
)
from azrestore.emulator.storage.units import parse_byte_rate, parse_duration, parse_request_rate
from azrestore.errors import InputError

MiB = 1024 * 1024


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- units and specs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("40ms", 0.04), ("0.5s", 0.5), ("250us", 250e-6), ("150 ms", 0.15), ("1e2ms", 0.1)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("1Gbit/s", 125_000_000),
        ("100Mbps", 12_500_000),
        ("60MiB/s", 60 * MiB),
        ("500kB/s", 500_000),
        ("2 GB / s", 2_000_000_000),
        ("10KiB", 10 * 1024),
    ],
)
def test_byte_rates(text: str, rate: float) -> None:
    assert parse_byte_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("text", ["40", "40m", "1Mb/s", "1kb/s", "0MiB/s", "x", "1Mbps/s"])
def test_bad_units(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text).replace("/", ".")):
        if text in ("40", "40m"):
            parse_duration(text)
        else:
            parse_byte_rate(text)


def test_request_rates() -> None:
    assert parse_request_rate("500/s") == parse_request_rate("500") == 500
    for bad in ("0/s", "500 requests", "-1"):
        with pytest.raises(ValueError):
            parse_request_rate(bad)


def test_link_spec() -> None:
    model = LinkModel.parse("rtt=40ms,jitter=5ms,rate=1Gbit/s,seed=7")
    assert model == LinkModel(rtt=0.04, jitter=0.005, rate=125_000_000, seed=7)
    assert LinkModel.parse("RTT = 150ms") == LinkModel(rtt=0.15)
    assert LinkModel.parse("none") == LinkModel()
    assert not LinkModel().active
    assert model.describe() == "rtt=40ms,jitter=5ms,rate=1Gbit/s"
    assert LinkModel.parse(model.describe()) == LinkModel(rtt=0.04, jitter=0.005, rate=125e6)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("rtt=40", "rtt: not a duration"),
        ("latency=40ms", "expected key=value items"),
        ("rtt=40ms,rtt=50ms", "rtt given twice"),
        ("rtt=5ms,jitter=10ms", "jitter must be between 0 and the rtt"),
        ("rtt=5ms,rate=1Mb/s", "ambiguous rate unit"),
        ("rtt=5ms,seed=x", "seed"),
        ("40ms", "expected key=value items"),
    ],
)
def test_bad_link_specs_say_why_in_one_line(spec: str, says: str) -> None:
    with pytest.raises(InputError) as caught:
        LinkModel.parse(spec)
    message = str(caught.value)
    assert says in message and repr(spec) in message and "\n" not in message


def test_target_specs() -> None:
    assert Targets.parse("standard", BLOB_PRESETS) == Targets(requests=500, bytes=60 * MiB)
    assert Targets.parse("Premium", BLOB_PRESETS) == BLOB_PRESETS["premium"]
    assert Targets.parse("none", BLOB_PRESETS) == Targets()
    assert Targets.parse("standard,requests=100/s", BLOB_PRESETS) == Targets(100, 60 * MiB)
    assert Targets.parse("bytes=8MiB/s,burst=250ms", BLOB_PRESETS) == Targets(
        bytes=8 * MiB, burst=0.25
    )
    # Azure's figures (AZURE-FACTS): 40,000 requests/s and 60 Gbps per standard account.
    assert ACCOUNT_PRESETS["standard"] == Targets(requests=40_000, bytes=60e9 / 8)
    for bad, says in [
        ("fast", "unknown preset 'fast'"),
        ("requests=lots", "requests: not a request rate"),
        ("standard,iops=5", "expected a preset or key=value"),
        ("burst=0s", "burst must be between"),
        ("requests=5/s,requests=6/s", "requests given twice"),
    ]:
        with pytest.raises(InputError, match=says):
            Targets.parse(bad, BLOB_PRESETS)


def test_network_model_from_specs() -> None:
    model = NetworkModel.from_specs("rtt=40ms,rate=1Gbit/s", "standard", None)
    assert model.link == LinkModel(rtt=0.04, rate=125e6)
    assert model.blob_targets == BLOB_PRESETS["standard"]
    assert not model.account_targets.active
    assert model.describe() == {
        "link": "rtt=40ms,rate=1Gbit/s",
        "blob_targets": "500 requests/s, 60 MiB/s",
        "account_targets": "none",
    }
    assert not NetworkModel.from_specs().active


durations = st.integers(min_value=0, max_value=10_000)


@given(rtt=durations, jitter=durations, mbit=st.integers(1, 100_000), seed=st.integers(0, 99))
def test_link_specs_round_trip(rtt: int, jitter: int, mbit: int, seed: int) -> None:
    spec = f"rtt={rtt}ms,jitter={jitter}us,rate={mbit}Mbit/s,seed={seed}"
    if jitter / 1000 > rtt:
        with pytest.raises(InputError, match="jitter"):
            LinkModel.parse(spec)
        return
    model = LinkModel.parse(spec)
    assert model.rtt == pytest.approx(rtt / 1000)
    assert model.jitter == pytest.approx(jitter / 1e6)
    assert model.rate == pytest.approx(mbit * 125_000)
    assert model.seed == seed


spec_text = st.text(alphabet="rtjiebuyqsod=,/.0123456789msGMKkiBp ", max_size=40)


@given(spec_text)
def test_link_spec_fuzz_parses_or_refuses_in_one_line(text: str) -> None:
    try:
        model = LinkModel.parse(text)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        assert model.rtt >= 0 and 0 <= model.jitter <= model.rtt
        assert model.rate is None or model.rate > 0


@given(st.one_of(spec_text, st.sampled_from(["standard,", "premium,bytes=", "none,requests="])))
def test_target_spec_fuzz_parses_or_refuses_in_one_line(text: str) -> None:
    try:
        targets = Targets.parse(text, BLOB_PRESETS)
    except InputError as exc:
        assert "\n" not in str(exc)
    else:
        assert targets.burst > 0
        assert targets.requests is None or targets.requests > 0


# -- token buckets and targets -----------------------------------------------------------


def test_token_bucket_is_exact() -> None:
    bucket = TokenBucket(rate=10, capacity=5, now=0.0)
    for _ in range(5):
        assert bucket.wait(1, 0.0) == 0
        bucket.take(1, 0.0)
    assert bucket.wait(1, 0.0) == pytest.approx(0.1)
    assert bucket.wait(1, 0.05) == pytest.approx(0.05)
    assert bucket.wait(1, 0.1) == 0
    bucket.take(1, 0.1)
    # Refilled for 10 s it holds no more than its capacity.
    assert bucket.wait(5, 10.0) == 0 and bucket.wait(5.5, 10.0) == 0
    bucket.take(5, 10.0)
    assert bucket.level == 0
    # A cost beyond the capacity takes a full bucket, so it passes when the bucket is full.
    assert bucket.wait(50, 10.25) == pytest.approx(0.25)


@given(st.lists(st.tuples(st.floats(0, 2), st.integers(1, 3)), max_size=60))
def test_token_bucket_never_exceeds_rate_plus_burst(steps: list[tuple[float, int]]) -> None:
    rate, capacity = 20.0, 4.0
    bucket = TokenBucket(rate, capacity, now=0.0)
    now = taken = 0.0
    for gap, amount in steps:
        now += gap
        if bucket.wait(amount, now) == 0:
            bucket.take(amount, now)
            taken += amount
        assert taken <= capacity + rate * now + 1e-9


def guard(blob: Targets, account: Targets, clock: Clock) -> tuple[TargetGuard, TargetCounters]:
    counters = TargetCounters()
    return TargetGuard(blob, account, counters, clock), counters


def test_blob_request_target_throttles_with_exact_retry_after() -> None:
    clock = Clock()
    targets, counters = guard(Targets(requests=4, burst=0.5), Targets(), clock)
    passed = [targets.admit("/a/c/b", 512) is None for _ in range(3)]
    assert passed == [True, True, False]
    throttle = targets.admit("/a/c/b", 512)
    assert throttle is not None and throttle.key == "blob-requests"
    assert throttle.retry_after == pytest.approx(0.25)
    # Another blob has its own budget.
    assert targets.admit("/a/c/other", 512) is None
    clock.now += 0.25
    assert targets.admit("/a/c/b", 512) is None
    assert counters.admitted == {"/a/c/b": 3, "/a/c/other": 1}
    assert counters.throttled == {"blob-requests": 2}
    assert counters.throttled_blobs == {"/a/c/b": 2}


def test_blob_byte_target_and_large_bodies() -> None:
    clock = Clock()
    targets, counters = guard(Targets(bytes=8 * MiB), Targets(), clock)
    assert targets.admit("/a/c/b", 4 * MiB) is None
    assert targets.admit("/a/c/b", 4 * MiB) is None
    throttle = targets.admit("/a/c/b", MiB)
    assert throttle is not None and throttle.key == "blob-bytes"
    assert throttle.retry_after == pytest.approx(1 / 8)
    # Requests without a body draw nothing from a byte target.
    assert targets.admit("/a/c/b", 0) is None
    clock.now += 10
    # A body over the whole burst passes on a full bucket, and empties it.
    assert targets.admit("/a/c/b", 20 * MiB) is None
    throttle = targets.admit("/a/c/b", 512)
    assert throttle is not None and throttle.retry_after == pytest.approx(512 / (8 * MiB))
    assert counters.throttled == {"blob-bytes": 2}


def test_account_target_is_shared_and_a_refusal_takes_nothing() -> None:
    clock = Clock()
    targets, counters = guard(Targets(requests=2), Targets(requests=3), clock)
    assert targets.admit("/a/c/x", 0) is None
    assert targets.admit("/a/c/x", 0) is None
    # x's own budget is spent: refused, and the account's budget is not drawn on.
    refused = targets.admit("/a/c/x", 0)
    assert refused is not None and refused.key == "blob-requests"
    assert targets.admit("/a/c/y", 0) is None
    refused = targets.admit(None, 0)  # a request to the account (listing, say)
    assert refused is not None and refused.key == "account-requests"
    assert refused.retry_after == pytest.approx(1 / 3)
    assert counters.throttled == {"blob-requests": 1, "account-requests": 1}
    assert counters.throttled_blobs == {"/a/c/x": 1}


def test_standard_blob_preset_admits_its_rate_and_no_more() -> None:
    """Driven at twice Azure's 500 requests/s for 10 s of the fake clock, one blob
    admits 500/s plus its one-second burst, and no more."""
    clock = Clock()
    targets, counters = guard(BLOB_PRESETS["standard"], ACCOUNT_PRESETS["standard"], clock)
    for _ in range(10_000):
        clock.now += 0.001
        targets.admit("/a/c/disk.vhd", 4096)
    assert counters.admitted["/a/c/disk.vhd"] == pytest.approx(500 * 10 + 500, abs=1)
    assert counters.throttled["blob-requests"] == 10_000 - counters.admitted["/a/c/disk.vhd"]


# -- the link ----------------------------------------------------------------------------


def test_rtt_counted_per_request() -> None:
    counters = LinkCounters()
    link = Link(LinkModel(rtt=0.04), counters, Clock())
    assert [link.delay(0) for _ in range(25)] == [0.04] * 25
    assert counters.delayed == 25
    assert counters.rtt_seconds == pytest.approx(1.0)
    assert counters.paced_bytes == 0


def test_jitter_is_bounded_and_repeats_by_seed() -> None:
    def delays(seed: int) -> list[float]:
        link = Link(LinkModel(rtt=0.04, jitter=0.01, seed=seed), LinkCounters(), Clock())
        return [link.delay(0) for _ in range(200)]

    first = delays(3)
    assert first == delays(3) and first != delays(4)
    assert all(0.03 <= delay <= 0.05 for delay in first)
    assert sum(first) / len(first) == pytest.approx(0.04, abs=0.002)


def test_link_cap_is_one_queue_in_arrival_order() -> None:
    clock = Clock()
    counters = LinkCounters()
    link = Link(LinkModel(rtt=0.01, rate=8 * MiB), counters, clock)
    # Four 1 MiB bodies at once: each waits for those before it.
    waits = [link.delay(MiB) for _ in range(4)]
    assert waits == pytest.approx([0.01 + 0.125 * k for k in (1, 2, 3, 4)])
    # Once the link is idle again a body waits only for itself.
    clock.now += 5
    assert link.delay(MiB) == pytest.approx(0.135)
    assert counters.paced_bytes == 5 * MiB
    assert counters.pacing_seconds == pytest.approx(0.125 * (1 + 2 + 3 + 4 + 1))
    assert counters.rtt_seconds == pytest.approx(0.05)


def test_network_stage_knows_blobs_from_the_account() -> None:
    stage = NetworkStage(NetworkModel(), "/devstoreaccount1", LinkCounters(), TargetCounters())
    assert stage.blob_of("/devstoreaccount1/c/disk.vhd") == "/devstoreaccount1/c/disk.vhd"
    assert stage.blob_of("/devstoreaccount1/c/dir/disk.vhd") == "/devstoreaccount1/c/dir/disk.vhd"
    for not_a_blob in (
        "/devstoreaccount1",
        "/devstoreaccount1/c",
        "/devstoreaccount1/c/",
        "/x/c/b",
    ):
        assert stage.blob_of(not_a_blob) is None


@pytest.mark.parametrize(
    ("seconds", "headers"),
    [
        (2.0, {"Retry-After": "2"}),
        (0.0021, {"Retry-After": "1", "x-ms-retry-after-ms": "3"}),
        (0.1, {"Retry-After": "1", "x-ms-retry-after-ms": "100"}),
        (1.5, {"Retry-After": "2", "x-ms-retry-after-ms": "1500"}),
    ],
)
def test_retry_after_headers_never_shorten_the_wait(
    seconds: float, headers: dict[str, str]
) -> None:
    got = retry_after_headers(seconds)
    assert got == headers
    assert float(got["Retry-After"]) >= seconds
    if "x-ms-retry-after-ms" in got:
        assert int(got["x-ms-retry-after-ms"]) / 1000 >= seconds
        assert int(got["x-ms-retry-after-ms"]) == math.ceil(round(seconds * 1000, 6))
