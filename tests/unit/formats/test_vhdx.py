"""A VHDX's allocation map from its own tables: the region table, the metadata items and
the BAT (payload entries interleaved with sector bitmap entries); malformed tables are a
VhdxError, never another exception."""

from __future__ import annotations

import contextlib
import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.formats import vhdx
from azrestore.formats.vhdx import Parameters, VhdxError

MiB = 1 << 20


def region_table(entries: list[tuple[uuid.UUID, int, int]]) -> bytes:
    body = b"".join(g.bytes_le + struct.pack("<QII", o, n, 1) for g, o, n in entries)
    return b"regi" + struct.pack("<III", 0, len(entries), 0) + body


def metadata(block_size: int, sector: int, size: int, flags: int = 0) -> bytes:
    items = [
        (vhdx.FILE_PARAMETERS, struct.pack("<II", block_size, flags)),
        (vhdx.VIRTUAL_DISK_SIZE, struct.pack("<Q", size)),
        (vhdx.LOGICAL_SECTOR_SIZE, struct.pack("<I", sector)),
    ]
    table = b"metadata" + struct.pack("<HH", 0, len(items)) + bytes(20)
    data = b""
    for guid, value in items:
        table += guid.bytes_le + struct.pack("<IIII", 64 * 1024 + len(data), len(value), 4, 0)
        data += value
    return table.ljust(64 * 1024, b"\0") + data


def test_regions_and_parameters() -> None:
    table = region_table([(vhdx.BAT_GUID, 3 * MiB, MiB), (vhdx.METADATA_GUID, 2 * MiB, MiB)])
    regions = vhdx.parse_region_table(table)
    assert regions[vhdx.BAT_GUID] == vhdx.Region(3 * MiB, MiB)
    parameters = vhdx.parse_metadata(metadata(32 * MiB, 512, 10 * 1024 * MiB))
    assert parameters == Parameters(32 * MiB, 512, 10 * 1024 * MiB, False)
    assert parameters.chunk_ratio == 128 and parameters.payload_blocks == 320
    assert parameters.bat_entries == 320 + 2


def test_present_blocks_are_the_data() -> None:
    """Blocks 0, 2 and 5 present, block 1 zero, the others not present; the last block
    is cut at the disk's end."""
    parameters = Parameters(64 * MiB, 512, 6 * 64 * MiB - 512, False)
    ratio = parameters.chunk_ratio  # 64
    assert ratio == 64
    states = [0] * parameters.bat_entries
    states[0] = states[2] = 6
    states[1] = 2  # a zero block
    states[5] = 6
    bat = struct.pack(f"<{len(states)}Q", *(s | (i + 1) << 20 for i, s in enumerate(states)))
    assert vhdx.data_extents(bat, parameters) == [
        (0, 64 * MiB),
        (2 * 64 * MiB, 64 * MiB),
        (5 * 64 * MiB, 64 * MiB - 512),
    ]


def test_a_large_disk_interleaves_bitmaps() -> None:
    parameters = Parameters(MiB, 512, 8 * 1024 * MiB, False)  # ratio 4096, 8192 blocks
    entries = [0] * parameters.bat_entries
    assert len(entries) == 8192 + 1
    entries[4096] = 6  # a sector bitmap entry: not block 4096
    entries[4097] = 6  # block 4096
    bat = struct.pack(f"<{len(entries)}Q", *entries)
    assert vhdx.data_extents(bat, parameters) == [(4096 * MiB, MiB)]


@pytest.mark.parametrize(
    ("table", "words"),
    [
        (b"xxxx" + bytes(60), "signature"),
        (region_table([(vhdx.BAT_GUID, MiB, MiB)]), "without BAT or metadata"),
        (region_table([(vhdx.BAT_GUID, 100, MiB)]), "aligned"),
    ],
)
def test_bad_region_tables(table: bytes, words: str) -> None:
    with pytest.raises(VhdxError, match=words):
        vhdx.parse_region_table(table)


def test_bad_metadata_and_states() -> None:
    with pytest.raises(VhdxError, match="block size"):
        vhdx.parse_metadata(metadata(12345, 512, MiB))
    with pytest.raises(VhdxError, match="sector size"):
        vhdx.parse_metadata(metadata(MiB, 1000, MiB))
    parameters = Parameters(MiB, 512, 2 * MiB, False)
    with pytest.raises(VhdxError, match="state 7"):
        vhdx.data_extents(struct.pack("<2Q", 7, 0), parameters)
    with pytest.raises(VhdxError, match="BAT of 8 bytes"):
        vhdx.data_extents(struct.pack("<Q", 6), parameters)
    with pytest.raises(VhdxError, match="differencing"):
        vhdx.data_extents(b"", Parameters(MiB, 512, MiB, True))


@settings(max_examples=200)
@given(st.binary(max_size=300), st.sampled_from([b"regi", b"metadata", b""]))
def test_any_bytes_parse_or_are_refused(data: bytes, magic: bytes) -> None:
    with contextlib.suppress(VhdxError):
        vhdx.parse_region_table(magic + data)
    with contextlib.suppress(VhdxError):
        vhdx.parse_metadata(magic + data)


@settings(max_examples=100)
@given(
    st.sampled_from([MiB, 2 * MiB, 32 * MiB]),
    st.integers(1, 5000).map(lambda n: n * 512),
    st.binary(min_size=0, max_size=200),
)
def test_any_bat_maps_within_the_disk_or_is_refused(block: int, size: int, bat: bytes) -> None:
    parameters = Parameters(block, 512, size, False)
    try:
        extents = vhdx.data_extents(bat, parameters)
    except VhdxError:
        return
    assert all(o >= 0 and o + n <= size and n > 0 for o, n in extents)
