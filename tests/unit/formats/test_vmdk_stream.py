"""The structures of a streamOptimized VMDK: the header (and its copy in the footer), the
grain directory and tables, the grain markers. What is malformed is a VmdkStreamError of
one line, never another exception; what is well formed but not read here is None."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.errors import InputError
from azrestore.formats import vmdk_stream as vs
from azrestore.formats.vmdk_stream import StreamHeader, VmdkStreamError
from tests.support.vmdk_stream import GD_AT_END, header


def _marker(value: int, kind: int) -> bytes:
    return struct.pack("<QII", value, 0, kind).ljust(512, b"\0")


def test_a_stream_header() -> None:
    found = vs.parse_header(header(10 * 65536 + 512, 77, flags=0x30005))
    assert found == StreamHeader(10 * 65536 + 512, 65536, 512, 77, True)
    assert (found.grains, found.gd_entries, found.gd_at_end) == (11, 1, False)
    assert vs.parse_header(header(512, GD_AT_END)) == StreamHeader(
        512, 65536, 512, GD_AT_END, False
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"version": 1},
        {"version": 2},
        {"version": 4},
        {"flags": 0x3},  # not compressed
        {"flags": 0x10001},  # compressed without markers
        {"flags": 0x30001 | 1 << 3},  # a flag not known here
        {"algorithm": 0},
        {"algorithm": 2},
        {"grain": 3 * 512},  # not a power of two
        {"grain": 2 << 20},  # larger than read here
    ],
)
def test_what_is_not_read_here_is_none(fields: dict[str, int]) -> None:
    assert vs.parse_header(header(1 << 20, 21, **fields)) is None


def test_another_magic_and_a_zero_capacity_are_none() -> None:
    assert vs.parse_header(b"COWD" + header(1 << 20, 21)[4:]) is None
    assert vs.parse_header(header(0, 21)) is None
    assert vs.parse_header(header((1 << 32) * 512, 21)) is None  # past VMDK's 2 TiB


@pytest.mark.parametrize("gtes", [0, 513])
def test_a_grain_table_size_out_of_range_is_malformed(gtes: int) -> None:
    with pytest.raises(VmdkStreamError, match="entries per grain table"):
        vs.parse_header(header(1 << 20, 21, gtes=gtes))


def test_the_footer_holds_the_header() -> None:
    tail = _marker(1, vs.MARKER_FOOTER) + header(1 << 20, 300) + _marker(0, 0)
    found = vs.parse_footer(tail)
    assert found is not None and found.gd_offset == 300 and found.capacity == 1 << 20
    with pytest.raises(VmdkStreamError, match="footer is missing"):
        vs.parse_footer(tail[:1024] + _marker(0, 1))
    with pytest.raises(VmdkStreamError, match="footer holds no header"):
        vs.parse_footer(tail[:512] + bytes(512) + tail[1024:])
    with pytest.raises(VmdkStreamError, match="does not say where"):
        vs.parse_footer(tail[:512] + header(1 << 20, GD_AT_END) + tail[1024:])


def test_tables_are_checked_against_the_file() -> None:
    h = vs.parse_header(header(1100 * 65536, 21))
    assert h is not None and h.gd_entries == 3
    assert list(vs.grain_directory(struct.pack("<3I", 30, 0, 40), h, 44)) == [30, 0, 40]
    with pytest.raises(VmdkStreamError, match="grain table 2 at sector 41 lies past"):
        vs.grain_directory(struct.pack("<3I", 30, 0, 41), h, 44)
    with pytest.raises(VmdkStreamError, match="directory is cut short"):
        vs.grain_directory(bytes(8), h, 44)
    table = struct.pack("<512I", *([0, 1, 50] + [0] * 509))
    assert list(vs.grain_table(table, h, 0, 51 * 512)[:3]) == [0, 1, 50]
    with pytest.raises(VmdkStreamError, match="points to sector 50, past the end"):
        vs.grain_table(table, h, 0, 50 * 512 + 11)


def test_markers() -> None:
    assert vs.parse_marker(struct.pack("<QI", 128, 700), 65536) == (128, 700)
    for size in (0, 2 * 65536 - 11):
        with pytest.raises(VmdkStreamError, match=f"says {size} compressed"):
            vs.parse_marker(struct.pack("<QI", 0, size), 65536)
    with pytest.raises(VmdkStreamError, match="cut short"):
        vs.parse_marker(b"\0" * 11, 65536)


def _one_line(error: VmdkStreamError) -> None:
    assert isinstance(error, InputError) and "\n" not in str(error)


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=600))
def test_any_header_bytes(data: bytes) -> None:
    try:
        found = vs.parse_header(data)
    except VmdkStreamError as exc:
        _one_line(exc)
        return
    if found is not None:
        assert found.capacity > 0 and 0 < found.grain_size <= vs.MAX_GRAIN_SECTORS * 512
        assert 0 < found.gtes_per_gt <= vs.MAX_GTES


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, (1 << 32) - 1),
    st.integers(0, 4096),
    st.integers(0, 0x3FFFF),
    st.sampled_from([1, 64, 128, 256, 2048, 4096]),
    st.integers(0, 600),
    st.integers(0, 3),
    st.binary(min_size=1536, max_size=1536),
    st.sampled_from(["tail", "header"]),
)
def test_near_valid_headers_and_footers(
    capacity: int,
    version: int,
    flags: int,
    grain: int,
    gtes: int,
    algorithm: int,
    noise: bytes,
    where: str,
) -> None:
    head = header(capacity * 512, GD_AT_END, version=version % 5, flags=flags, grain=grain * 512)
    head = (
        head[:44] + struct.pack("<I", gtes) + head[48:77] + struct.pack("<H", algorithm) + head[79:]
    )
    data = noise[:512] + head + noise[1024:] if where == "tail" else head + noise[512:]
    try:
        found = vs.parse_footer(data) if where == "tail" else vs.parse_header(data)
    except VmdkStreamError as exc:
        _one_line(exc)
        return
    if found is not None and where == "tail":
        assert not found.gd_at_end


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 1 << 31),
    st.binary(max_size=4096),
    st.integers(0, 1 << 40),
    st.binary(max_size=16),
)
def test_any_tables_and_markers(capacity: int, data: bytes, file_size: int, marker: bytes) -> None:
    h = vs.parse_header(header(capacity * 512, 1, flags=0x30005))
    assert h is not None
    for parse in (
        lambda: vs.grain_directory(data, h, file_size // 512),
        lambda: vs.grain_table(data, h, 0, file_size),
        lambda: vs.parse_marker(marker, h.grain_size),
    ):
        try:
            parse()
        except VmdkStreamError as exc:
            _one_line(exc)
