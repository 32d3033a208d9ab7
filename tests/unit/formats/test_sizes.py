"""Size rules and human size parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azrestore.formats.sizes import (
    FOOTER_SIZE,
    MAX_DISK_SIZE,
    MAX_PAGE_BLOB,
    MAX_PUT_PAGE,
    GiB,
    KiB,
    MiB,
    TiB,
    blob_size,
    format_size,
    parse_size,
    round_down,
    round_up,
    virtual_size,
)


def test_units() -> None:
    assert (KiB, MiB, GiB, TiB) == (2**10, 2**20, 2**30, 2**40)
    assert MAX_PUT_PAGE == 4 * 2**20
    assert MAX_PAGE_BLOB == 8 * 2**40
    # The largest disk leaves room for the footer and is whole MiB.
    assert MAX_DISK_SIZE % MiB == 0
    assert MAX_DISK_SIZE + FOOTER_SIZE <= MAX_PAGE_BLOB
    assert MAX_DISK_SIZE + MiB + FOOTER_SIZE > MAX_PAGE_BLOB


@pytest.mark.parametrize(
    ("value", "multiple", "up", "down"),
    [
        (0, 512, 0, 0),
        (1, 512, 512, 0),
        (511, 512, 512, 0),
        (512, 512, 512, 512),
        (513, 512, 1024, 512),
        (MiB - 1, MiB, MiB, 0),
        (MiB + 1, MiB, 2 * MiB, MiB),
    ],
)
def test_round(value: int, multiple: int, up: int, down: int) -> None:
    assert round_up(value, multiple) == up
    assert round_down(value, multiple) == down


@given(st.integers(0, 2**50), st.integers(1, 2**24))
def test_round_properties(value: int, multiple: int) -> None:
    up, down = round_up(value, multiple), round_down(value, multiple)
    assert up % multiple == 0 and down % multiple == 0
    assert down <= value <= up
    assert up - value < multiple and value - down < multiple


@pytest.mark.parametrize(
    ("disk", "virtual", "blob"),
    [
        (1, MiB, MiB + 512),
        (512, MiB, MiB + 512),
        (MiB, MiB, MiB + 512),
        (MiB + 512, 2 * MiB, 2 * MiB + 512),
        (20 * MiB, 20 * MiB, 20_972_032),  # Azure's smallest upload size
        (10 * GiB + 12345, 10 * GiB + MiB, 10 * GiB + MiB + 512),
    ],
)
def test_virtual_and_blob_size(disk: int, virtual: int, blob: int) -> None:
    assert virtual_size(disk) == virtual
    assert blob_size(disk) == blob


@given(st.integers(1, MAX_DISK_SIZE))
def test_blob_size_meets_azure_rules(disk: int) -> None:
    blob = blob_size(disk)
    assert (blob - 512) % MiB == 0
    assert blob % 512 == 0
    assert disk <= blob - 512 < disk + MiB
    assert blob <= MAX_PAGE_BLOB


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4MiB", 4 * MiB),
        ("256KiB", 256 * KiB),
        ("200MB", 200_000_000),
        ("1.5GiB", 1_610_612_736),
        ("1048576", 1_048_576),
        ("0", 0),
        ("512B", 512),
        ("1 GiB", GiB),
        (" 2tib ", 2 * TiB),
        ("10kB", 10_000),
        ("3k", 3000),
        ("1.1MB", 1_100_000),
        (".5KiB", 512),
        ("60MiB/s", 60 * MiB),
        ("8 MB/s", 8_000_000),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a size"),
        ("abc", "not a size"),
        ("-1MiB", "not a size"),
        ("1e6", "not a size"),
        ("5 bytes", "unknown unit"),
        ("4 XB", "unknown unit"),
        ("1.5.2GiB", "not a size"),
        ("0.3KiB", "not a whole number of bytes"),
        ("1.0000001B", "not a whole number of bytes"),
    ],
)
def test_parse_size_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_size(text)
    assert repr(text) in str(info.value)


# Exact arithmetic: a decimal fraction that is a whole number of bytes is accepted, and
# integers beyond a float's 53 bits keep every digit.
def test_parse_size_decimal_fraction_that_is_whole() -> None:
    assert parse_size("4.1GB") == 4_100_000_000


def test_parse_size_large_integer() -> None:
    assert parse_size("9007199254740993") == 2**53 + 1


@given(st.integers(0, 10**12), st.sampled_from(["", "B", "KiB", "MiB", "GiB", "kB", "MB", "GB"]))
def test_parse_size_integers(number: int, unit: str) -> None:
    factor = {"": 1, "B": 1, "KiB": KiB, "MiB": MiB, "GiB": GiB, "kB": 1000}
    factor |= {"MB": 1000**2, "GB": 1000**3}
    assert parse_size(f"{number}{unit}") == number * factor[unit]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (KiB, "1.0 KiB"),
        (1536 * KiB, "1.5 MiB"),
        (3 * GiB, "3.0 GiB"),
        (2 * TiB, "2.0 TiB"),
        (-2 * MiB, "-2.0 MiB"),
    ],
)
def test_format_size(value: int, text: str) -> None:
    assert format_size(value) == text
