"""A streamOptimized VMDK is decompressed in-process (sources/qemu/vmdk_stream.py), with
no qemu-nbd: judged against qemu, the disk reads as ``qemu-img convert -O raw`` reads it
byte for byte and its data extents are what ``qemu-img map`` says, for images qemu-img
made and ones laid out as VMware writes them (grain directory at the end); what the
reader does not know goes to qemu-nbd, and damage is refused in one line."""

from __future__ import annotations

import random
import struct
import threading
from pathlib import Path

import pytest

from azrestore.errors import InputError, SourceError
from azrestore.formats.sizes import KiB, MiB
from azrestore.sources.base import ChainLink
from azrestore.sources.open import open_source
from azrestore.sources.qemu.image import ContainerImage
from azrestore.sources.qemu.info import ImageInfo
from azrestore.sources.qemu.vmdk_stream import StreamVmdkImage, open_stream_vmdk
from tests.support.qemu import AWKWARD_SIZE, convert, nonzero_map, pattern_raw, raw_view, run
from tests.support.tools import needs
from tests.support.vmdk_stream import GRAIN, write_stream

pytestmark = [needs("qemu-img", "qemu-io", "qemu-nbd"), pytest.mark.anyio]

#: Not a MiB multiple, and its last grain is cut short by the disk's end.
ODD_SIZE = 5 * GRAIN + 3 * 512


def _odd_raw(path: Path) -> Path:
    """Data in the first and last sector, across a grain boundary, random bytes over
    two grains (incompressible), and holes."""
    data = bytearray(ODD_SIZE)
    data[:512] = b"\x01" * 512
    data[GRAIN - 100 : GRAIN + 300] = b"\x02" * 400
    data[2 * GRAIN + 7 : 4 * GRAIN + 9] = random.Random(11).randbytes(2 * GRAIN + 2)
    data[-512:] = b"\x03" * 512
    path.write_bytes(bytes(data))
    return path


def _stream(raw: Path, target: Path, *extra: str) -> Path:
    run(
        "qemu-img", "convert", *extra, "-f", "raw", "-O", "vmdk",
        "-o", "subformat=streamOptimized", raw, target,
    )  # fmt: skip
    return target


def _read(source: StreamVmdkImage | ContainerImage, chunk: int) -> bytes:
    out = bytearray(source.size)
    view = memoryview(out)
    for offset in range(0, source.size, chunk):
        got = source.read_into(view[offset : offset + chunk], offset)
        assert got == min(chunk, source.size - offset)
    return bytes(out)


def _info(path: Path, size: int) -> ImageInfo:
    return ImageInfo("vmdk", size, (ChainLink(str(path), "vmdk"),), (str(path),))


BUILDS = {
    "awkward-size": lambda tmp: _stream(pattern_raw(tmp / "p.raw"), tmp / "disk.vmdk"),
    "odd-last-grain": lambda tmp: _stream(_odd_raw(tmp / "o.raw"), tmp / "disk.vmdk"),
    # -S 0: the grains that are all zeros are stored too, compressed.
    "all-zero-grains": lambda tmp: _stream(_odd_raw(tmp / "o.raw"), tmp / "disk.vmdk", "-S", "0"),
    "vmware-layout": lambda tmp: write_stream(
        tmp / "disk.vmdk", _odd_raw(tmp / "o.raw").read_bytes()
    ),
    "vmware-zeroed-grain": lambda tmp: write_stream(
        tmp / "disk.vmdk",
        _odd_raw(tmp / "o.raw").read_bytes(),
        zeroed=frozenset({1, 3}),
        flags=0x30005,
    ),
}


@pytest.mark.parametrize("case", list(BUILDS))
async def test_reads_as_qemu_reads_it(tmp_path: Path, case: str) -> None:
    image = BUILDS[case](tmp_path)
    expected = raw_view(image, "vmdk")
    source = await open_source(image)
    try:
        assert isinstance(source, StreamVmdkImage)
        assert (source.size, source.format) == (len(expected), "vmdk")
        assert source.chain == (ChainLink(str(image), "vmdk"),)
        for chunk in (3 * MiB + 512, 4 * KiB + 512, GRAIN):
            assert _read(source, chunk) == expected
        assert source.data_extents() == nonzero_map(image, "vmdk")
        assert source.read_at(GRAIN - 200, 1000) == expected[GRAIN - 200 : GRAIN + 800]
        assert source.read_at(source.size - 100, 1000) == expected[-100:]
    finally:
        source.close()


async def test_the_zero_grains_are_neither_data_nor_read(tmp_path: Path) -> None:
    image = BUILDS["vmware-zeroed-grain"](tmp_path)
    with await open_source(image) as source:
        assert isinstance(source, StreamVmdkImage)
        assert source.data_extents() == [(0, GRAIN), (2 * GRAIN, GRAIN), (4 * GRAIN, 1536 + GRAIN)]
        source.read_into(memoryview(bytearray(4 * GRAIN)), 0)
        assert source.decompressed_bytes == 2 * GRAIN  # grains 0 and 2 only


async def test_threads_reading_at_once_read_the_same(tmp_path: Path) -> None:
    raw = tmp_path / "r.raw"
    raw.write_bytes(random.Random(5).randbytes(4 * MiB) + bytes(2 * MiB) + b"\x09" * MiB)
    image = _stream(raw, tmp_path / "disk.vmdk")
    expected = raw.read_bytes()
    with await open_source(image) as source:
        assert isinstance(source, StreamVmdkImage)
        out = bytearray(source.size)
        view = memoryview(out)

        def reader(first: int) -> None:
            for offset in range(first * 512 * KiB, source.size, 4 * 512 * KiB):
                source.read_into(view[offset : offset + 512 * KiB], offset)

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert bytes(out) == expected


@pytest.mark.parametrize(
    ("what", "fields"),
    [("version 2", (2, 0x30001)), ("an unknown flag", (3, 0x30001 | 1 << 8))],
)
async def test_what_the_reader_does_not_know_goes_to_qemu(
    tmp_path: Path, what: str, fields: tuple[int, int]
) -> None:
    data = _odd_raw(tmp_path / "o.raw").read_bytes()
    image = write_stream(tmp_path / "disk.vmdk", data, version=fields[0], flags=fields[1])
    source = await open_source(image)
    try:
        assert isinstance(source, ContainerImage), what
        assert _read(source, 3 * MiB) == raw_view(image, "vmdk") == data
    finally:
        source.close()


def _first_grain(image: Path) -> int:
    """Byte offset of the first grain's marker in a qemu-made stream."""
    data = image.read_bytes()
    gd = struct.unpack_from("<Q", data, 56)[0] * 512
    table = struct.unpack_from("<I", data, gd)[0] * 512
    return int(struct.unpack_from("<I", data, table)[0]) * 512


async def test_a_stream_cut_short_in_its_last_grain_is_refused(tmp_path: Path) -> None:
    image = _stream(pattern_raw(tmp_path / "p.raw"), tmp_path / "disk.vmdk")
    # qemu-img leaves the grains last, after its tables: cut into the last one.
    data = image.read_bytes()
    last = max(
        struct.unpack_from("<I", data, 512 * sector + 4 * slot)[0]
        for sector in struct.unpack_from("<I", data, struct.unpack_from("<Q", data, 56)[0] * 512)
        for slot in range(512)
    )
    image.write_bytes(data[: last * 512 + 20])
    with pytest.raises(InputError) as caught:
        await open_source(image)
    message = str(caught.value)
    assert message == (
        f"{image}: the VMDK's last grain (at byte {last * 512}) ends past the end of the"
        f" file ({last * 512 + 20} bytes): the file is truncated"
    )


def test_a_grain_table_pointing_past_the_end_is_refused(tmp_path: Path) -> None:
    image = _stream(pattern_raw(tmp_path / "p.raw"), tmp_path / "disk.vmdk")
    data = bytearray(image.read_bytes())
    gd = struct.unpack_from("<Q", data, 56)[0] * 512
    table = struct.unpack_from("<I", data, gd)[0] * 512
    struct.pack_into("<I", data, table + 4 * 3, len(data) // 512 + 10)
    image.write_bytes(bytes(data))
    with pytest.raises(InputError) as caught:
        open_stream_vmdk(str(image), _info(image, AWKWARD_SIZE))
    assert str(caught.value) == (
        f"{image}: the VMDK's grain table 0 points to sector {len(data) // 512 + 10}, past"
        f" the end of the file ({len(data)} bytes): the file is truncated or damaged"
    )


def test_a_vmware_stream_without_its_footer_is_refused(tmp_path: Path) -> None:
    image = write_stream(tmp_path / "disk.vmdk", _odd_raw(tmp_path / "o.raw").read_bytes())
    image.write_bytes(image.read_bytes()[:-1024])
    with pytest.raises(InputError) as caught:
        open_stream_vmdk(str(image), _info(image, ODD_SIZE))
    assert str(caught.value) == f"{image}: the VMDK's footer is missing (a truncated stream?)"


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("data", "cannot be read: Error -3 while decompressing data"),
        ("size", "cannot be read: a VMDK grain marker says 4294967295 compressed bytes"),
    ],
)
async def test_a_damaged_grain_fails_its_read_in_one_line(
    tmp_path: Path, damage: str, said: str
) -> None:
    image = _stream(pattern_raw(tmp_path / "p.raw"), tmp_path / "disk.vmdk")
    at = _first_grain(image)
    data = bytearray(image.read_bytes())
    if damage == "data":
        data[at + 12 : at + 20] = b"\xff" * 8
    else:
        data[at + 8 : at + 12] = b"\xff" * 4
    image.write_bytes(bytes(data))
    with await open_source(image) as source:
        assert isinstance(source, StreamVmdkImage)
        with pytest.raises(SourceError) as caught:
            source.read_into(memoryview(bytearray(MiB)), 0)
    message = str(caught.value)
    assert message.startswith(f"{image}: grain 0 (at byte {at} of the file) {said}")
    assert "\n" not in message


async def test_other_vmdks_still_go_to_qemu(tmp_path: Path) -> None:
    image = convert(pattern_raw(tmp_path / "p.raw"), tmp_path / "s.vmdk", "vmdk")
    with await open_source(image) as source:
        assert isinstance(source, ContainerImage)
