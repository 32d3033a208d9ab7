"""A differencing VHDX's header, parent locator and BAT (sector bitmap entries, partially
present blocks): what MS-VHDX lays out parses; any other bytes are a VhdxError, never
another exception."""

from __future__ import annotations

import contextlib
import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.formats import vhdx_parent
from azrestore.formats.vhdx import Parameters, VhdxError
from azrestore.formats.vhdx_parent import Block

MiB = 1 << 20
DATA_WRITE = uuid.UUID("83ed0ec3-24c8-49a6-a959-5e4bf1288bfb")


def vhdx_header(sequence: int, data_write: uuid.UUID = DATA_WRITE, *, bad: bool = False) -> bytes:
    body = bytearray(4096)
    body[:4] = b"head"
    struct.pack_into(
        "<Q16s16s16sHHIQ",
        body,
        8,
        sequence,
        bytes(16),
        data_write.bytes_le,
        bytes(16),
        0,
        1,
        MiB,
        MiB,
    )
    struct.pack_into("<I", body, 4, vhdx_parent.crc32c(bytes(body)) ^ int(bad))
    return bytes(body)


def locator(entries: dict[str, str], kind: uuid.UUID = vhdx_parent.VHDX_LOCATOR_TYPE) -> bytes:
    pairs = [(k.encode("utf-16-le"), v.encode("utf-16-le")) for k, v in entries.items()]
    start = 20 + 12 * len(pairs)
    table, blob = b"", b""
    for key, value in pairs:
        table += struct.pack(
            "<IIHH", start + len(blob), start + len(blob) + len(key), len(key), len(value)
        )
        blob += key + value
    return kind.bytes_le + struct.pack("<HH", 0, len(pairs)) + table + blob


def test_crc32c_known_value() -> None:
    assert vhdx_parent.crc32c(b"123456789") == 0xE3069283


def test_the_current_header_is_the_valid_one_with_the_higher_sequence() -> None:
    other = uuid.uuid4()
    assert (
        vhdx_parent.current_header(vhdx_header(5), vhdx_header(6, other)).data_write_guid == other
    )
    assert vhdx_parent.current_header(vhdx_header(7), vhdx_header(6, other)).sequence == 7
    assert vhdx_parent.current_header(vhdx_header(5), vhdx_header(9, other, bad=True)).sequence == 5
    with pytest.raises(VhdxError, match="no valid header"):
        vhdx_parent.current_header(vhdx_header(1, bad=True), bytes(4096))


def test_a_log_with_entries_under_its_guid() -> None:
    log_guid = uuid.uuid4()
    entry = b"loge" + bytes(28) + log_guid.bytes_le
    assert vhdx_parent.log_has_entries(bytes(4096) + entry.ljust(4096, b"\0"), log_guid)
    assert not vhdx_parent.log_has_entries(entry.ljust(8192, b"\0"), uuid.uuid4())
    assert not vhdx_parent.log_has_entries(entry.ljust(8192, b"\0"), uuid.UUID(int=0))


def test_a_parent_locator_parses() -> None:
    parsed = vhdx_parent.parse_parent_locator(
        locator(
            {
                "parent_linkage": "{" + str(DATA_WRITE).upper() + "}",
                "relative_path": "..\\base\\parent.vhdx",
                "absolute_win32_path": "\\\\?\\D:\\base\\parent.vhdx",
                "something_else": "x",
            }
        )
    )
    assert parsed.linkages == (DATA_WRITE,)
    assert parsed.paths == {
        "relative_path": "..\\base\\parent.vhdx",
        "absolute_win32_path": "\\\\?\\D:\\base\\parent.vhdx",
    }


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (locator({"parent_linkage": "{x}", "relative_path": "p"}), "parent_linkage"),
        (locator({"relative_path": "p"}), "without parent_linkage"),
        (locator({"parent_linkage": str(DATA_WRITE)}), "without a path"),
        (locator({"parent_linkage": str(DATA_WRITE)}, uuid.uuid4()), "not a VHDX parent"),
        (b"short", "shorter"),
    ],
)
def test_bad_locators_are_refused(item: bytes, message: str) -> None:
    with pytest.raises(VhdxError, match=message):
        vhdx_parent.parse_parent_locator(item)


def bat(values: dict[int, int], entries: int) -> bytes:
    return struct.pack(f"<{entries}Q", *(values.get(i, 0) for i in range(entries)))


def test_a_differencing_bat() -> None:
    parameters = Parameters(MiB, 512, 5 * MiB, True)
    ratio = parameters.chunk_ratio  # 4096: one chunk, its bitmap entry after 4096 payloads
    table = bat({0: (4 << 20) | 6, 1: (5 << 20) | 7, 2: 2, 3: 1, ratio: (9 << 20) | 6}, ratio + 1)
    blocks, bitmaps = vhdx_parent.differencing_blocks(table, parameters)
    assert blocks == [Block(0, 6, 4 << 20), Block(1, 7, 5 << 20), Block(2, 2, 0)]
    assert bitmaps == {0: 9 << 20}
    assert vhdx_parent.bitmap_slice(1, parameters) == (256, 2048)
    assert vhdx_parent.bitmap_slice(4, Parameters(MiB, 512, 4 * MiB + 4096, True)) == (1024, 8)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({1: (5 << 20) | 7}, "without a sector bitmap"),
        ({0: 6}, "file offset 0"),
        ({0: 4}, "state 4"),
        ({4096: 3}, "sector bitmap block 0 in state 3"),
        ({4096: 6, 1: (5 << 20) | 7}, "sector bitmap block 0 at file offset 0"),
        ({0: (1 << 19) | 6}, "file offset 0"),
    ],
)
def test_bad_differencing_bats_are_refused(values: dict[int, int], message: str) -> None:
    with pytest.raises(VhdxError, match=message):
        vhdx_parent.differencing_blocks(bat(values, 4097), Parameters(MiB, 512, 5 * MiB, True))


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_any_locator_parses_or_is_refused(data: bytes) -> None:
    for item in (data, vhdx_parent.VHDX_LOCATOR_TYPE.bytes_le + data):
        with contextlib.suppress(VhdxError):
            parsed = vhdx_parent.parse_parent_locator(item)
            assert parsed.linkages and parsed.paths


@settings(max_examples=200)
@given(st.binary(max_size=4200), st.binary(max_size=4200))
def test_any_headers_parse_or_are_refused(first: bytes, second: bytes) -> None:
    with contextlib.suppress(VhdxError):
        vhdx_parent.current_header(b"head" + first, second)


@settings(max_examples=100)
@given(
    st.sampled_from([MiB, 32 * MiB]),
    st.sampled_from([512, 4096]),
    st.integers(1, 3000).map(lambda n: n * 4096),
    st.lists(st.integers(0, (1 << 64) - 1), max_size=40),
)
def test_any_differencing_bat_maps_within_the_disk_or_is_refused(
    block: int, sector: int, size: int, values: list[int]
) -> None:
    parameters = Parameters(block, sector, size, True)
    table = struct.pack(f"<{len(values)}Q", *values).ljust(8 * parameters.bat_entries, b"\0")
    try:
        blocks, bitmaps = vhdx_parent.differencing_blocks(table, parameters)
    except VhdxError:
        return
    for entry in blocks:
        assert 0 <= entry.index < parameters.payload_blocks
        at, sectors = vhdx_parent.bitmap_slice(entry.index, parameters)
        assert at >= 0 and at + -(-sectors // 8) <= vhdx_parent.BITMAP_BLOCK
        if entry.state == 7:
            assert bitmaps[entry.index // parameters.chunk_ratio] > 0
