"""Every container format and subformat, made by qemu-img and qemu-io, read through
open_source: the whole virtual disk equals ``qemu-img convert -O raw`` byte for byte, and
the data extents are what ``qemu-img map`` says is not zero (so unallocated and zero
clusters are never read)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from azrestore.errors import InputError
from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import fixed_vhd_footer
from azrestore.sources.base import ChainLink, DiskSource
from azrestore.sources.fixedvhd import FixedVhdImage
from azrestore.sources.open import open_source
from azrestore.sources.qemu.vmdk_stream import StreamVmdkImage
from azrestore.sources.raw import RawImage
from tests.support.qemu import (
    AWKWARD_SIZE,
    convert,
    create,
    nonzero_map,
    pattern_raw,
    qemu_io,
    raw_view,
)
from tests.support.tools import needs

pytestmark = [needs("qemu-img", "qemu-io", "qemu-nbd"), pytest.mark.anyio]

Builder = Callable[[Path], tuple[Path, str]]


def _converted(fmt: str, *options: str, compress: bool = False, suffix: str = "") -> Builder:
    def build(tmp: Path) -> tuple[Path, str]:
        raw = pattern_raw(tmp / "pattern.raw")
        return convert(raw, tmp / f"disk{suffix}.{fmt}", fmt, *options, compress=compress), fmt

    return build


def _qcow2_zero_clusters(tmp: Path) -> tuple[Path, str]:
    image, fmt = _converted("qcow2", "compat=1.1", "cluster_size=65536")(tmp)
    # Explicit zero clusters over data, and a zeroed run that is not cluster-aligned.
    qemu_io(image, fmt, "write -z 5M 128k", "write -z 60k 8k", "write -P 0x5a 7M 1k")
    return image, fmt


def _qcow2_chain(tmp: Path) -> tuple[Path, str]:
    base, _ = _converted("qcow2")(tmp)
    mid = create(tmp / "mid.qcow2", "qcow2", None, backing=base)
    qemu_io(mid, "qcow2", "write -P 0x11 64k 128k", "discard 5M 64k", "write -z 2M 64k")
    top = create(tmp / "top.qcow2", "qcow2", None, backing=mid)
    qemu_io(top, "qcow2", "write -P 0x22 96k 4k", "discard 64k 32k", "write -P 0x33 8M 513")
    return top, "qcow2"


def _qcow2_data_file(tmp: Path) -> tuple[Path, str]:
    # An absolute name: qemu resolves a relative data_file against its working directory.
    image = create(tmp / "disk.qcow2", "qcow2", AWKWARD_SIZE, f"data_file={tmp / 'disk.data'}")
    qemu_io(image, "qcow2", "write -P 0xab 0 512", "write -P 0xcd 1M 70k", "write -z 1M 4k")
    return image, "qcow2"


def _qcow2_relative_data_file(tmp: Path) -> tuple[Path, str]:
    # Named relative, as users make it beside the image; qemu resolves such a name in its
    # working directory, which is not this folder when azrestore reads it.
    image = create(tmp / "disk.qcow2", "qcow2", AWKWARD_SIZE, "data_file=disk.data", cwd=tmp)
    qemu_io(image, "qcow2", "write -P 0xab 0 512", "write -P 0xcd 1M 70k", cwd=tmp)
    return image, "qcow2"


def _dynamic_vpc(tmp: Path) -> tuple[Path, str]:
    image, fmt = _converted("vpc", "subformat=dynamic")(tmp)
    qemu_io(image, fmt, "write -P 0x77 4M 2k")
    return image, fmt


CASES: dict[str, Builder] = {
    "qcow2-v2": _converted("qcow2", "compat=0.10"),
    "qcow2-v3-zero-clusters": _qcow2_zero_clusters,
    "qcow2-compressed": _converted("qcow2", compress=True),
    "qcow2-small-clusters": _converted("qcow2", "cluster_size=4096"),
    "qcow2-chain-of-3": _qcow2_chain,
    "qcow2-data-file": _qcow2_data_file,
    "qcow2-relative-data-file": _qcow2_relative_data_file,
    "vmdk-monolithicSparse": _converted("vmdk", "subformat=monolithicSparse"),
    "vmdk-streamOptimized": _converted("vmdk", "subformat=streamOptimized"),
    "vmdk-twoGbMaxExtentSparse": _converted("vmdk", "subformat=twoGbMaxExtentSparse"),
    "vmdk-twoGbMaxExtentFlat": _converted("vmdk", "subformat=twoGbMaxExtentFlat"),
    "vmdk-monolithicFlat": _converted("vmdk", "subformat=monolithicFlat"),
    "vhdx-dynamic": _converted("vhdx", "subformat=dynamic"),
    "vhdx-fixed": _converted("vhdx", "subformat=fixed"),
    "vpc-dynamic": _dynamic_vpc,
    "vpc-fixed": _converted("vpc", "subformat=fixed"),
    "vdi-static": _converted("vdi", "static=on"),
    "vdi-dynamic": _converted("vdi"),
}


def read_all(source: DiskSource, chunk: int = 3 * MiB + 512) -> bytes:
    """The whole disk read as the pipeline reads it: read_into at chunk offsets, the last
    chunk running past the end (zero-filled)."""
    out = bytearray()
    buffer = bytearray(chunk)
    for offset in range(0, source.size, chunk):
        got = source.read_into(memoryview(buffer), offset)
        assert got == min(chunk, source.size - offset)
        assert not any(buffer[got:])
        out += buffer[:got]
    return bytes(out)


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_container_reads_as_qemu_reads_it(tmp_path: Path, case: str) -> None:
    image, fmt = CASES[case](tmp_path)
    expected = raw_view(image, fmt)
    source = await open_source(image)
    try:
        assert source.format == fmt
        # Compressed grains are decompressed in-process; every other VMDK goes to qemu.
        assert isinstance(source, StreamVmdkImage) == (case == "vmdk-streamOptimized")
        assert source.path == str(image)
        assert source.chain[0] == ChainLink(str(image), fmt)
        assert source.size == len(expected)
        assert read_all(source) == expected
        extents = source.data_extents()
        assert extents == nonzero_map(image, fmt)
        assert source.allocated_bytes() == sum(length for _, length in extents)
        # What is not in the data extents reads as zeros: nothing is lost by skipping it.
        holes = bytearray(expected)
        for offset, length in extents:
            holes[offset : offset + length] = bytes(length)
        assert not any(holes)
    finally:
        source.close()


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("qcow2", ()),
        ("vmdk", ("subformat=monolithicSparse",)),
        ("vmdk", ("subformat=streamOptimized",)),
        ("vpc", ("subformat=dynamic",)),
        ("vdi", ()),
        ("vhdx", ("subformat=dynamic", "block_size=1048576")),
    ],
)
async def test_sparse_formats_skip_what_they_do_not_hold(
    tmp_path: Path, fmt: str, options: tuple[str, ...]
) -> None:
    """Three small runs in a 64 MiB disk: what is read stays within three of the format's
    blocks (VHD's, the largest, are 2 MiB)."""
    raw = tmp_path / "sparse.raw"
    with raw.open("wb") as handle:
        handle.truncate(64 * MiB)
        for offset in (0, 30 * MiB + 512, 64 * MiB - 512):
            handle.seek(offset)
            handle.write(b"\x42" * 512)
    image = convert(raw, tmp_path / f"sparse.{fmt}", fmt, *options)
    with await open_source(image) as source:
        assert read_all(source)[: 64 * MiB] == raw.read_bytes()
        assert 3 * 512 <= source.allocated_bytes() <= 6 * MiB


async def test_a_chain_lists_every_file_top_first(tmp_path: Path) -> None:
    top, _ = _qcow2_chain(tmp_path)
    with await open_source(top) as source:
        assert [(Path(link.path).name, link.format) for link in source.chain] == [
            ("top.qcow2", "qcow2"),
            ("mid.qcow2", "qcow2"),
            ("disk.qcow2", "qcow2"),
        ]


async def test_a_raw_backing_file_is_in_the_chain(tmp_path: Path) -> None:
    base = pattern_raw(tmp_path / "base.raw")
    top = create(tmp_path / "top.qcow2", "qcow2", None, backing=base, backing_format="raw")
    qemu_io(top, "qcow2", "write -P 0x99 1M 4k")
    with await open_source(top) as source:
        assert [link.format for link in source.chain] == ["qcow2", "raw"]
        assert read_all(source) == raw_view(top, "qcow2")


async def test_a_relative_data_file_of_a_backing_file_elsewhere_is_refused(
    tmp_path: Path,
) -> None:
    """qemu would look for it in the top image's folder, so azrestore refuses to guess."""
    (tmp_path / "base").mkdir()
    base, _ = _qcow2_relative_data_file(tmp_path / "base")
    top = create(tmp_path / "top.qcow2", "qcow2", None, backing=base)
    with pytest.raises(InputError) as caught:
        await open_source(top)
    assert str(caught.value).startswith(
        f"{base}: its external data file 'disk.data' is a relative name, which qemu resolves"
    )


async def test_a_fixed_vhd_is_read_directly(tmp_path: Path) -> None:
    """No qemu-nbd for a fixed VHD: its data is the file less the footer, as qemu reads
    it; also one that azrestore itself wrote."""
    image, _ = _converted("vpc", "subformat=fixed")(tmp_path)
    own = tmp_path / "own.vhd"
    data = pattern_raw(tmp_path / "p.raw").read_bytes()
    own.write_bytes(data + fixed_vhd_footer(len(data)))
    for path in (image, own):
        with await open_source(path) as source:
            assert isinstance(source, FixedVhdImage)
            assert (source.format, source.chain) == ("vpc", (ChainLink(str(path), "vpc"),))
            assert read_all(source) == raw_view(path, "vpc")
            holes = bytearray(raw_view(path, "vpc"))
            for offset, length in source.data_extents():
                assert offset + length <= source.size
                holes[offset : offset + length] = bytes(length)
            assert not any(holes)


async def test_the_format_can_be_forced(tmp_path: Path) -> None:
    image, _ = _converted("vpc", "subformat=fixed")(tmp_path)
    with await open_source(image, image_format="vpc") as source:
        assert source.format == "vpc"
        assert read_all(source) == raw_view(image, "vpc")


async def test_a_vhd_whose_footer_copy_says_differencing_is_refused(tmp_path: Path) -> None:
    """The copy of the footer at offset 0 says differencing, the footer itself dynamic:
    one line, before anything starts (differencing VHDs: test_sources_differencing)."""
    image, _ = _dynamic_vpc(tmp_path)
    data = bytearray(image.read_bytes())
    data[60:64] = (4).to_bytes(4, "big")  # the footer's copy at offset 0: differencing
    image.write_bytes(bytes(data))
    with pytest.raises(InputError) as caught:
        await open_source(image)
    assert str(caught.value) == (
        f"{image}: a malformed differencing VHD: disk type 3, not differencing"
    )


def _descriptor(create_type: str, extents: list[str]) -> str:
    return (
        "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
        f'createType="{create_type}"\n\n# Extent description\n'
        + "".join(f"{line}\n" for line in extents)
        + '\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = "4"\n'
        'ddb.adapterType = "lsilogic"\n'
    )


async def test_an_esxi_descriptor_with_its_flat_extent(tmp_path: Path) -> None:
    """As ESXi writes them: a text descriptor (createType vmfs) beside NAME-flat.vmdk,
    named relative to the descriptor, opened from another directory."""
    folder = tmp_path / "datastore" / "vm"
    folder.mkdir(parents=True)
    flat = pattern_raw(folder / "vm-flat.vmdk")
    sectors = AWKWARD_SIZE // 512
    descriptor = folder / "vm.vmdk"
    descriptor.write_text(_descriptor("vmfs", [f'RW {sectors} VMFS "vm-flat.vmdk"']))
    with await open_source(descriptor) as source:
        assert source.format == "vmdk"
        assert read_all(source) == flat.read_bytes()
        assert source.data_extents() == nonzero_map(descriptor, "vmdk")


async def test_a_descriptor_of_several_extents(tmp_path: Path) -> None:
    """Multi-extent: two flat extents and a sparse one, each named relative to it."""
    pattern = pattern_raw(tmp_path / "p.raw").read_bytes()
    first, second = 3 * MiB, 5 * MiB
    (tmp_path / "s1.raw").write_bytes(pattern[:first])
    (tmp_path / "s2.raw").write_bytes(pattern[first : first + second])
    tail = tmp_path / "tail.raw"
    tail.write_bytes(pattern[first + second :])
    convert(tail, tmp_path / "s3.vmdk", "vmdk", "subformat=monolithicSparse")
    rest = (len(pattern) - first - second) // 512
    descriptor = tmp_path / "multi.vmdk"
    descriptor.write_text(
        _descriptor(
            "monolithicFlat",
            [
                f'RW {first // 512} FLAT "s1.raw" 0',
                f'RW {second // 512} FLAT "s2.raw" 0',
                f'RW {rest} SPARSE "s3.vmdk"',
            ],
        )
    )
    with await open_source(descriptor) as source:
        assert source.size == len(pattern)
        assert read_all(source) == pattern
        assert source.data_extents() == nonzero_map(descriptor, "vmdk")


async def test_a_raw_file_keeps_the_direct_path(tmp_path: Path) -> None:
    raw = pattern_raw(tmp_path / "p.raw")
    with await open_source(raw) as source:
        assert isinstance(source, RawImage)
        assert (source.format, source.chain) == ("raw", (ChainLink(str(raw), "raw"),))
    image, _ = _converted("qcow2")(tmp_path)
    with pytest.raises(InputError, match="is a qcow2 image, not a raw disk"):
        await open_source(image, image_format="raw")
