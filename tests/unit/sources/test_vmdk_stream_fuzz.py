"""A streamOptimized VMDK damaged anywhere (bytes overwritten, the file cut short) is
refused at open with one InputError line, handed to qemu (None), or read: a read either
gives the whole buffer or fails with one SourceError line; never another exception, and
never a read outside the file's bytes."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azrestore.errors import InputError, SourceError
from azrestore.sources.base import ChainLink
from azrestore.sources.qemu.info import ImageInfo
from azrestore.sources.qemu.vmdk_stream import open_stream_vmdk
from tests.support.vmdk_stream import GRAIN, write_stream

SIZE = 5 * GRAIN + 1536


def _data() -> bytes:
    data = bytearray(SIZE)
    data[:512] = b"\x01" * 512
    data[GRAIN - 100 : GRAIN + 300] = random.Random(3).randbytes(400)
    data[3 * GRAIN : 4 * GRAIN] = b"ab" * (GRAIN // 2)
    data[-512:] = b"\x03" * 512
    return bytes(data)


DATA = _data()


def _valid(gd_at_end: bool) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = write_stream(
            Path(folder) / "s.vmdk",
            DATA,
            gd_at_end=gd_at_end,
            zeroed=frozenset({2}),
            flags=0x30005,
        )
        return path.read_bytes()


VALID = {True: _valid(True), False: _valid(False)}


def _check(image: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.vmdk"
        path.write_bytes(image)
        info = ImageInfo("vmdk", SIZE, (ChainLink(str(path), "vmdk"),), (str(path),))
        try:
            source = open_stream_vmdk(str(path), info)
        except InputError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(f"{path}: ")
            return
        if source is None:
            return
        with source:
            for chunk in (SIZE, 3 * GRAIN + 512):
                for offset in range(0, SIZE, chunk):
                    buffer = bytearray(chunk)
                    try:
                        got = source.read_into(memoryview(buffer), offset)
                    except SourceError as exc:
                        assert "\n" not in str(exc)
                        continue
                    assert got == min(chunk, SIZE - offset)
            extents = source.data_extents()
            assert all(start >= 0 and start + length <= SIZE for start, length in extents)


def test_the_valid_streams_read_back() -> None:
    for image in VALID.values():
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "s.vmdk"
            path.write_bytes(image)
            info = ImageInfo("vmdk", SIZE, (ChainLink(str(path), "vmdk"),), (str(path),))
            source = open_stream_vmdk(str(path), info)
            assert source is not None
            with source:
                expected = DATA[: 2 * GRAIN] + bytes(GRAIN) + DATA[3 * GRAIN :]
                assert source.read_at(0, SIZE) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.booleans(),
    st.lists(st.tuples(st.integers(0, len(VALID[True]) - 1), st.binary(min_size=1, max_size=8))),
    st.one_of(st.none(), st.integers(0, len(VALID[True]))),
)
def test_damage_anywhere(gd_at_end: bool, writes: list[tuple[int, bytes]], cut: int | None) -> None:
    image = bytearray(VALID[gd_at_end])
    for at, value in writes:
        image[at : at + len(value)] = value
    if cut is not None:
        del image[cut:]
    _check(bytes(image))


@settings(max_examples=200, deadline=None)
@given(st.booleans(), st.data())
def test_damage_to_the_metadata(gd_at_end: bool, data: st.DataObject) -> None:
    """Writes aimed at the header, tables, markers and footer, where damage matters."""
    image = bytearray(VALID[gd_at_end])
    sectors = len(image) // 512
    interesting = [0, 1, sectors - 3, sectors - 2, sectors - 1, *range(21, sectors, 7)]
    for _ in range(data.draw(st.integers(1, 4))):
        sector = data.draw(st.sampled_from(interesting))
        at = sector * 512 + data.draw(st.integers(0, 79))
        value = data.draw(st.binary(min_size=1, max_size=8))
        image[at : at + len(value)] = value
    _check(bytes(image))
