"""Container images and an NBD export uploaded through the pipeline into Azurite, behind the
strict gateway: the blob is ``qemu-img convert -O raw`` of the source plus padding and
footer, byte for byte; no all-zero range is sent; what is read stays near the format's
allocated bytes.

The pipeline's ``upload_disk`` opens only raw images by path until its callers move to
``open_source``; these tests hand it the open source the way it takes an open RawImage.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from azrestore.azure.pageblob import open_page_blob
from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import VhdFooter
from azrestore.sources.base import DiskSource
from azrestore.sources.open import open_source
from azrestore.transfer.config import TransferConfig
from azrestore.transfer.pipeline import upload_disk
from azrestore.transfer.progress import TransferResult
from tests.e2e.test_sources_formats import CASES
from tests.support.nbdserver import serving
from tests.support.pages import page_span
from tests.support.qemu import raw_view
from tests.support.storage import StorageTarget
from tests.support.tools import needs

pytestmark = [needs("qemu-img", "qemu-io", "qemu-nbd"), pytest.mark.anyio]


async def upload(source: DiskSource, storage: StorageTarget, name: str) -> TransferResult:
    config = TransferConfig(chunk_size=MiB)
    async with open_page_blob(storage.sas_url(name)) as sink:
        return await upload_disk(source, sink, config=config)


def check(storage: StorageTarget, name: str, expected: bytes, result: TransferResult) -> None:
    client = storage.blob_client(name)
    blob = client.download_blob().readall()
    padded = -(-len(expected) // MiB) * MiB
    assert len(blob) == padded + 512
    assert blob[: len(expected)] == expected
    assert not any(blob[len(expected) : padded])
    assert VhdFooter.parse(blob[-512:]).current_size == padded
    ranges = [page_span(r) for r in client.list_page_ranges() if not r.cleared]
    for start, end in ranges:
        assert any(blob[start:end]), f"an all-zero range was sent: {start}-{end}"


@pytest.mark.parametrize(
    "case",
    ["qcow2-chain-of-3", "qcow2-compressed", "vmdk-streamOptimized", "vhdx-dynamic", "vdi-dynamic"],
)
async def test_a_container_uploads_as_qemu_reads_it(
    storage: StorageTarget, tmp_path: Path, case: str
) -> None:
    image, fmt = CASES[case](tmp_path)
    expected = raw_view(image, fmt)
    with await open_source(image) as source:
        result = await upload(source, storage, f"{case}.vhd")
        allocated = source.allocated_bytes()
    check(storage, f"{case}.vhd", expected, result)
    assert result.stats.bytes_read <= allocated


@needs("nbdkit")
async def test_an_nbd_export_uploads(storage: StorageTarget, tmp_path: Path) -> None:
    image, fmt = CASES["qcow2-v3-zero-clusters"](tmp_path)
    expected = raw_view(image, fmt)
    raw = tmp_path / "served.raw"
    raw.write_bytes(expected)
    sock = tmp_path / "s.sock"
    command = ["nbdkit", "--foreground", "--readonly", "--unix", str(sock), "file", str(raw)]
    with serving(command, unix=sock), await open_source(f"nbd+unix:///?socket={sock}") as source:
        result = await upload(source, storage, "nbd.vhd")
    check(storage, "nbd.vhd", expected, result)
