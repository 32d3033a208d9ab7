"""Container images whose data lies uncompressed in their one file are read from it
directly (sources/qemu/hostmap.py), the rest through qemu-nbd: judged from outside, the
disk read equals ``qemu-img convert -O raw`` byte for byte either way, and the direct
path is taken exactly where it may be. (A streamOptimized VMDK has a reader of its own:
tests/e2e/test_sources_vmdk_stream.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from azrestore.formats.sizes import MiB
from azrestore.sources.open import open_source
from azrestore.sources.qemu.image import ContainerImage
from tests.support.qemu import convert, create, pattern_raw, qemu_io, raw_view
from tests.support.tools import needs

pytestmark = [needs("qemu-img", "qemu-io", "qemu-nbd"), pytest.mark.anyio]

CASES = {
    "qcow2": ("qcow2", (), False, True),
    "qcow2-compressed": ("qcow2", (), True, False),
    "vmdk-monolithicSparse": ("vmdk", ("subformat=monolithicSparse",), False, True),
    "vhdx-dynamic": ("vhdx", ("subformat=dynamic",), False, True),
    "vpc-dynamic": ("vpc", ("subformat=dynamic",), False, True),
}


def _read(source: ContainerImage, chunk: int = 3 * MiB + 512) -> bytes:
    out = bytearray(source.size)
    view = memoryview(out)
    for offset in range(0, source.size, chunk):
        source.read_into(view[offset : offset + chunk], offset)
    return bytes(out)


@pytest.mark.parametrize("case", list(CASES))
async def test_read_directly_where_the_file_holds_the_data(tmp_path: Path, case: str) -> None:
    fmt, options, compress, direct = CASES[case]
    raw = pattern_raw(tmp_path / "pattern.raw")
    image = convert(raw, tmp_path / f"disk.{fmt}", fmt, *options, compress=compress)
    source = await open_source(image)
    try:
        assert isinstance(source, ContainerImage)
        assert (source.direct_bytes > 0) == direct
        assert _read(source) == raw_view(image, fmt)
    finally:
        source.close()


async def test_zeroed_clusters_over_old_data_read_as_zeros(tmp_path: Path) -> None:
    raw = pattern_raw(tmp_path / "pattern.raw")
    image = convert(raw, tmp_path / "disk.qcow2", "qcow2", "compat=1.1")
    # Zero flags on allocated clusters (their old bytes stay in the file), one unaligned.
    qemu_io(image, "qcow2", "write -P 0x11 1M 128k", "write -P 0x12 3M 64k")
    qemu_io(image, "qcow2", "write -z 1M 128k", "write -z 3M 4k", "write -P 0x5a 2M 1k")
    source = await open_source(image)
    try:
        assert isinstance(source, ContainerImage) and source.direct_bytes > 0
        data = _read(source)
        assert data == raw_view(image, "qcow2")
        assert data[1 * MiB : 1 * MiB + 128 * 1024] == bytes(128 * 1024)
    finally:
        source.close()


async def test_an_image_with_a_backing_file_is_read_through_qemu_nbd(tmp_path: Path) -> None:
    base = convert(pattern_raw(tmp_path / "pattern.raw"), tmp_path / "base.qcow2", "qcow2")
    top = create(tmp_path / "top.qcow2", "qcow2", None, backing=base)
    qemu_io(top, "qcow2", "write -P 0x22 96k 4k")
    source = await open_source(top)
    try:
        assert isinstance(source, ContainerImage) and source.direct_bytes == 0
        assert _read(source) == raw_view(top, "qcow2")
    finally:
        source.close()
