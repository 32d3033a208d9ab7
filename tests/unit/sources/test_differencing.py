"""The overlay of a differencing file on its parent (sources/differencing.py), against a
byte-by-byte model: the child's sectors from its file, its zero ranges as zeros, the rest
from the parent (zeros past the parent's end); the data extents are exactly the child's
data plus the parent's extents under what the child leaves to it."""

from __future__ import annotations

import itertools
import os
import random
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.sources.base import ChainLink
from azrestore.sources.closing import ClosedOnExit
from azrestore.sources.differencing import DifferencingImage
from azrestore.sources.diffmaps import ZERO_HOST, ChildMap
from azrestore.sources.qemu.hostmap import HostMap

SECTOR = 512


class FakeParent(ClosedOnExit):
    """A parent source over bytes, with the given extents (and zeros elsewhere)."""

    path = "parent.vhd"
    format = "vpc"
    files = ("parent.vhd",)
    is_block_device = False

    def __init__(self, data: bytes, extents: list[tuple[int, int]]) -> None:
        self.data = data
        self.size = len(data)
        self.extents = extents
        self.closed = False

    @property
    def chain(self) -> tuple[ChainLink, ...]:
        return (ChainLink(self.path, self.format),)

    def data_extents(self) -> list[tuple[int, int]]:
        return list(self.extents)

    def read_into(self, buffer: memoryview, offset: int) -> int:
        want = max(0, min(len(buffer), self.size - offset))
        buffer[:want] = self.data[offset : offset + want]
        buffer[want:] = bytes(len(buffer) - want)
        return want

    def allocated_bytes(self) -> int:
        return sum(length for _, length in self.extents)

    def read_at(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    def close(self) -> None:
        self.closed = True


# Each sector of the child: 0 from the parent, 1 data in the child's file, 2 zeros.
kinds = st.lists(st.sampled_from([0, 1, 2]), min_size=1, max_size=48)


@settings(max_examples=150, deadline=None)
@given(kinds, st.integers(0, 60), st.lists(st.booleans(), min_size=60, max_size=60), st.data())
def test_the_overlay_reads_and_maps_as_the_model(
    sectors: list[int], parent_sectors: int, parent_data: list[bool], data: st.DataObject
) -> None:
    size = len(sectors) * SECTOR
    rng = random.Random(len(sectors) * 1000 + parent_sectors)
    parent = bytearray(parent_sectors * SECTOR)
    parent_extents: list[tuple[int, int]] = []
    for index in range(parent_sectors):
        if parent_data[index]:
            parent[index * SECTOR : (index + 1) * SECTOR] = rng.randbytes(SECTOR)
            parent_extents.append((index * SECTOR, SECTOR))
    child_file = rng.randbytes(size + 4096)
    ranges = HostMap()
    expected = bytearray(size)
    for index, kind in enumerate(sectors):
        start = index * SECTOR
        if kind == 1:
            host = 4096 + (len(sectors) - 1 - index) * SECTOR  # reversed: no merging by luck
            ranges.add(start, SECTOR, host)
            expected[start : start + SECTOR] = child_file[host : host + SECTOR]
        elif kind == 2:
            ranges.add(start, SECTOR, ZERO_HOST + start)
        else:
            expected[start : start + SECTOR] = parent[start : start + SECTOR].ljust(SECTOR, b"\0")
    with tempfile.NamedTemporaryFile() as handle:
        handle.write(child_file)
        handle.flush()
        fd = os.open(handle.name, os.O_RDONLY)
        fake = FakeParent(bytes(parent), parent_extents)
        child = ChildMap("vpc", size, ranges, "parent.vhd", (), (b"",))
        image = DifferencingImage(handle.name, fd, child, fake)
        with image:
            offset = data.draw(st.integers(0, size))
            length = data.draw(st.integers(0, size + 1024))
            buffer = bytearray(b"\xee" * length)
            got = image.read_into(memoryview(buffer), offset)
            assert got == max(0, min(length, size - offset))
            assert buffer[:got] == expected[offset : offset + got]
            assert not any(buffer[got:])
            assert image.read_at(0, size) == bytes(expected)
            held = {
                index
                for index, kind in enumerate(sectors)
                if kind == 1 or (kind == 0 and index < parent_sectors and parent_data[index])
            }
            mapped = set()
            for start, length_ in image.data_extents():
                assert start % SECTOR == 0 and length_ % SECTOR == 0 and length_ > 0
                mapped |= set(range(start // SECTOR, (start + length_) // SECTOR))
            assert mapped == held
            extents = image.data_extents()
            assert all(a[0] + a[1] < b[0] for a, b in itertools.pairwise(extents))
            assert image.files == (handle.name, "parent.vhd")
        assert fake.closed
