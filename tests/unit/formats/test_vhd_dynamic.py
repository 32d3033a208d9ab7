"""A VHD's dynamic disk header, BAT, locators and sector bitmaps: what the specification
lays out parses; any other bytes are a VhdDynamicError, never another exception."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.formats import vhd_dynamic
from azrestore.formats.vhd_dynamic import Locator, VhdDynamicError

MiB = 1 << 20


def header(
    *,
    entries: int = 8,
    block: int = 2 * MiB,
    parent_id: bytes = bytes(range(16)),
    locators: tuple[tuple[bytes, int, int], ...] = (),
    name: str = "parent.vhd",
) -> bytes:
    table = b"".join(struct.pack(">4sIIIQ", c, 1, n, 0, o) for c, o, n in locators)
    data = bytearray(
        struct.pack(
            ">8sQQIII I16sI4x512s192s256x",
            b"cxsparse",
            0xFFFF_FFFF_FFFF_FFFF,
            1536,
            0x00010000,
            entries,
            block,
            0,
            parent_id,
            0,
            name.encode("utf-16-be"),
            table,
        )
    )
    struct.pack_into(">I", data, 36, vhd_dynamic.header_checksum(bytes(data)))
    return bytes(data)


def test_a_header_parses() -> None:
    parsed = vhd_dynamic.parse_header(
        header(locators=((b"W2ru", 4096, 24), (b"W2ku", 4608, 40))), virtual_size=16 * MiB
    )
    assert (parsed.table_offset, parsed.max_table_entries, parsed.block_size) == (1536, 8, 2 * MiB)
    assert parsed.parent_unique_id == bytes(range(16))
    assert parsed.parent_name == "parent.vhd"
    assert parsed.locators == (Locator(b"W2ru", 4096, 24), Locator(b"W2ku", 4608, 40))
    assert parsed.bitmap_size == 512


@pytest.mark.parametrize(
    ("data", "size", "message"),
    [
        (b"cxsparse" + bytes(1016), MiB, "checksum"),
        (header(block=3 * MiB), MiB, "block size"),
        (header(entries=1), 4 * MiB, "a BAT of 1 entries"),
        (header(locators=((b"W2ru", 0, 1 << 20),)), MiB, "parent locator of"),
        (b"conectix" + bytes(1016), MiB, "cookie"),
        (header()[:-1], MiB, "1023 bytes"),
    ],
)
def test_bad_headers_are_refused(data: bytes, size: int, message: str) -> None:
    with pytest.raises(VhdDynamicError, match=message):
        vhd_dynamic.parse_header(data, virtual_size=size)


def test_locator_paths() -> None:
    assert vhd_dynamic.locator_path(Locator(b"W2ru", 0, 0), ".\\p.vhd".encode("utf-16-le")) == (
        ".\\p.vhd"
    )
    assert vhd_dynamic.locator_path(Locator(b"Wi2k", 0, 0), b"C:\\p.vhd\0\0") == "C:\\p.vhd"
    assert vhd_dynamic.locator_path(Locator(b"MacX", 0, 0), b"file://p") is None


def test_bitmap_sizes() -> None:
    assert vhd_dynamic.bitmap_size(2 * MiB) == 512
    assert vhd_dynamic.bitmap_size(4096) == 512
    assert vhd_dynamic.bitmap_size(16 * MiB) == 4096


def naive_runs(bitmap: bytes, sectors: int, msb_first: bool) -> list[tuple[int, int]]:
    bits = [(bitmap[i // 8] >> (7 - i % 8 if msb_first else i % 8)) & 1 for i in range(sectors)]
    runs: list[tuple[int, int]] = []
    for index, bit in enumerate(bits):
        if not bit:
            continue
        if runs and runs[-1][0] + runs[-1][1] == index:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((index, 1))
    return runs


@settings(max_examples=300)
@given(st.binary(min_size=1, max_size=64), st.booleans(), st.data())
def test_sector_runs_are_the_set_bits(bitmap: bytes, msb_first: bool, data: st.DataObject) -> None:
    sectors = data.draw(st.integers(1, len(bitmap) * 8))
    found = vhd_dynamic.sector_runs(bitmap, sectors, msb_first=msb_first)
    assert found == naive_runs(bitmap, sectors, msb_first)


def test_bit_order() -> None:
    assert vhd_dynamic.sector_runs(b"\x80", 8) == [(0, 1)]
    assert vhd_dynamic.sector_runs(b"\x80", 8, msb_first=False) == [(7, 1)]
    with pytest.raises(VhdDynamicError):
        vhd_dynamic.sector_runs(b"\xff", 9)


@settings(max_examples=300)
@given(st.binary(min_size=1024, max_size=1024), st.integers(1, 1 << 40))
def test_any_header_parses_or_is_refused(data: bytes, size: int) -> None:
    fixed = bytearray(b"cxsparse" + data[8:])
    struct.pack_into(">I", fixed, 36, vhd_dynamic.header_checksum(bytes(fixed)))
    for candidate in (data, bytes(fixed)):
        try:
            parsed = vhd_dynamic.parse_header(candidate, virtual_size=size)
        except VhdDynamicError:
            continue
        assert parsed.max_table_entries * parsed.block_size >= size
        assert all(0 < loc.length <= vhd_dynamic.MAX_LOCATOR for loc in parsed.locators)


@settings(max_examples=100)
@given(st.binary(max_size=64), st.integers(0, 20))
def test_any_bat_parses_or_is_refused(data: bytes, entries: int) -> None:
    with contextlib.suppress(VhdDynamicError):
        assert len(vhd_dynamic.parse_bat(data, entries)) == entries
