"""Differencing VHD and VHDX files with fuzzed headers, tables, locators and bitmaps:
reading one's map is an InputError or a map whose every range lies within the disk and
(for data) within the file, so nothing is ever read out of bounds."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azrestore.errors import InputError
from azrestore.formats import vhd_dynamic
from azrestore.formats.vhd_footer import footer_checksum
from azrestore.sources.diffmaps import ZERO_HOST, ChildMap, read_vhd_child, read_vhdx_child
from tests.e2e.test_sources_differencing import vhd_pair, vhdx_pair
from tests.support.tools import needs

pytestmark = needs("qemu-img", "qemu-io")

Mutations = list[tuple[int, int]]


class Children(dict[str, bytes]):
    """The two children's bytes, by format (shown by name only in a failure report)."""

    def __repr__(self) -> str:
        return "Children(vpc, vhdx)"


@pytest.fixture(scope="module")
def children(tmp_path_factory: pytest.TempPathFactory) -> Children:
    vhd, _, _ = vhd_pair(tmp_path_factory.mktemp("vhd"))
    vhdx, _, _ = vhdx_pair(tmp_path_factory.mktemp("vhdx"))
    return Children(vpc=vhd.read_bytes(), vhdx=vhdx.read_bytes())


def _regions(fmt: str, data: bytes) -> list[tuple[int, int]]:
    if fmt == "vpc":
        (header_at,) = struct.unpack_from(">Q", data, len(data) - 512 + 16)
        (table_at,) = struct.unpack_from(">Q", data, header_at + 16)
        (block_0,) = struct.unpack_from(">I", data, table_at)
        return [
            (0, 512),
            (header_at, 1024),
            (table_at, 64),
            (block_0 * 512, 512),
            (len(data) - 1536, 1536),  # the locators' paths and the footer
        ]
    regions_at = 192 * 1024
    (meta_at,) = struct.unpack_from("<Q", data, regions_at + 16 + 32 + 16)
    (bat_at,) = struct.unpack_from("<Q", data, regions_at + 16 + 16)
    return [
        (64 * 1024, 128),
        (regions_at, 128),
        (meta_at, 256),
        (meta_at + 64 * 1024, 512),
        (bat_at, 96),
        (bat_at + 8 * 4096, 8),
        (len(data) - (1 << 20), 64),  # the sector bitmap block
    ]


def _fix_checksums(data: bytearray) -> None:
    """Make the VHD's footers and header sum right again, so the fuzz gets past them."""
    for at in (0, len(data) - 512):
        footer = bytes(data[at : at + 512])
        struct.pack_into(">I", data, at + 64, footer_checksum(footer))
    (header_at,) = struct.unpack_from(">Q", data, len(data) - 512 + 16)
    header = bytes(data[header_at : header_at + 1024])
    if len(header) == 1024:
        struct.pack_into(">I", data, header_at + 36, vhd_dynamic.header_checksum(header))


def _check(child: ChildMap, file_size: int) -> None:
    for start, length, host in child.ranges:
        assert length > 0 and start >= 0 and start + length <= child.size
        if host < ZERO_HOST:
            assert host >= 0 and host + length <= file_size


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fmt=st.sampled_from(["vpc", "vhdx"]),
    region=st.integers(0, 6),
    mutations=st.lists(
        st.tuples(
            st.integers(0, 1 << 20),
            st.one_of(st.integers(0, 255), st.integers(0, (1 << 64) - 1)),
        ),
        min_size=1,
        max_size=8,
    ),
    fix=st.booleans(),
)
def test_a_fuzzed_child_maps_within_bounds_or_is_refused(
    children: Children,
    tmp_path: Path,
    fmt: str,
    region: int,
    mutations: Mutations,
    fix: bool,
) -> None:
    """Mutations in one structure at a time, so that a fuzzed table is reached past the
    checksummed header before it."""
    data = bytearray(children[fmt])
    regions = _regions(fmt, bytes(data))
    at, length = regions[region % len(regions)]
    for offset, value in mutations:
        if value < 256:  # one byte, or a whole (aligned) table entry
            data[at + offset % length] = value
        elif fmt == "vpc":
            struct.pack_into(">I", data, at + offset % (length // 4) * 4, value >> 32)
        else:
            struct.pack_into("<Q", data, at + offset % (length // 8) * 8, value)
    if fix and fmt == "vpc":
        _fix_checksums(data)
    path = tmp_path / f"fuzz.{fmt}"
    path.write_bytes(bytes(data))
    fd = os.open(path, os.O_RDONLY)
    try:
        child = read_vhd_child(str(path), fd) if fmt == "vpc" else read_vhdx_child(str(path), fd)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    finally:
        os.close(fd)
    _check(child, len(data))
