"""The map of a container image's data in its file (sources/qemu/hostmap.py): qemu-img map
lines taken only where they are data stored as it reads, and any range cut into mapped
and unmapped pieces that cover it exactly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.sources.qemu.hostmap import HostMap, parse_map_line


def test_only_data_at_an_offset_is_mapped() -> None:
    data = '[{ "start": 0, "length": 65536, "depth": 0, "present": true, "zero": false,'
    data += ' "data": true, "offset": 327680},'
    assert parse_map_line(data) == (0, 65536, 327680)
    # A zero-flagged cluster keeps an offset but may hold old bytes: never read from there.
    zero = '{ "start": 0, "length": 512, "depth": 0, "zero": true, "data": false, "offset": 9}'
    assert parse_map_line(zero) is None
    # Compressed grains and backing files have no offset into this file.
    assert parse_map_line('{ "start": 0, "length": 512, "depth": 0, "data": true}]') is None
    backing = '{ "start": 0, "length": 512, "depth": 1, "zero": false, "data": true, "offset": 0}'
    assert parse_map_line(backing) is None
    assert parse_map_line("]") is None


def test_segments_cover_a_range_with_its_gaps() -> None:
    host = HostMap([(100, 50, 1000), (150, 10, 5000), (300, 100, 0)])
    assert host.mapped_bytes == 160
    assert host.segments(0, 500) == [
        (0, 100, -1),
        (100, 50, 1000),
        (150, 10, 5000),
        (160, 140, -1),
        (300, 100, 0),
        (400, 100, -1),
    ]
    assert host.segments(120, 40) == [(120, 30, 1020), (150, 10, 5000)]
    assert host.segments(310, 10) == [(310, 10, 10)]
    assert host.segments(200, 50) == [(200, 50, -1)]


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.tuples(st.integers(0, 64), st.integers(1, 64)), max_size=8),
    offset=st.integers(0, 700),
    length=st.integers(0, 300),
)
def test_every_byte_maps_where_the_ranges_say(
    gaps: list[tuple[int, int]], offset: int, length: int
) -> None:
    ranges, position = [], 0
    for gap, size in gaps:
        position += gap
        ranges.append((position, size, 10_000 + position * 3))
        position += size
    host = HostMap(ranges)
    pieces = host.segments(offset, length)
    assert sum(size for _, size, _ in pieces) == length
    at = offset
    for start, size, where in pieces:
        assert start == at and size > 0
        for byte in (start, start + size - 1):
            expected = next((h + byte - s for s, n, h in ranges if s <= byte < s + n), -1)
            assert (where + byte - start if where >= 0 else -1) == expected
        at += size


@pytest.mark.parametrize("length", [0])
def test_an_empty_range_has_no_pieces(length: int) -> None:
    assert HostMap([(0, 10, 0)]).segments(5, length) == []


def test_ranges_that_continue_each_other_are_merged() -> None:
    host = HostMap([(0, 10, 100), (10, 5, 110), (15, 5, 200), (30, 5, 205)])
    assert len(host) == 3
    assert host.segments(0, 40) == [
        (0, 15, 100),
        (15, 5, 200),
        (20, 10, -1),
        (30, 5, 205),
        (35, 5, -1),
    ]
