"""Verification: a blob read back and compared with its image, through the gateway, with
every kind of difference planted straight into Azurite behind azrestore's back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest
from typer.testing import Result

from azrestore.azure.pageblob import open_page_blob
from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import fixed_vhd_footer
from azrestore.transfer.budget import TransferBudget
from azrestore.transfer.config import TransferConfig
from azrestore.transfer.pipeline import upload_disk
from azrestore.transfer.verify import verify_disk
from tests.support.cli import invoke as invoke_cli
from tests.support.images import make_sparse_image
from tests.support.storage import StorageTarget

pytestmark = [pytest.mark.anyio]

SIZE = 20 * MiB


async def invoke(*args: str | Path) -> Result:
    """The CLI in-process, off the test's event loop (it runs a loop of its own)."""
    return await anyio.to_thread.run_sync(lambda: invoke_cli(*args))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """Data at 1-6 MiB and 12-13 MiB, written zeros at 8-9 MiB, holes elsewhere."""
    return make_sparse_image(
        tmp_path / "disk.raw",
        SIZE,
        [(MiB, os.urandom(5 * MiB)), (8 * MiB, bytes(MiB)), (12 * MiB, os.urandom(MiB))],
    )


async def uploaded(storage: StorageTarget, name: str, image: Path) -> str:
    url = storage.sas_url(name)
    async with open_page_blob(url) as sink:
        await upload_disk(image, sink, config=TransferConfig(chunk_size=MiB))
    return url


async def test_identical_blob_verifies(storage: StorageTarget, image: Path) -> None:
    url = await uploaded(storage, "ok.vhd", image)
    config = TransferConfig(concurrency=3, chunk_size=MiB)
    budget = TransferBudget.from_config(config)
    async with open_page_blob(url, existing=True) as sink:
        result = await verify_disk(image, sink, config=config, budget=budget)
    assert result.identical, result
    assert result.bytes_read_back == 6 * MiB + 512  # the written ranges and the footer
    assert budget.pool.peak <= 3 and budget.pool.in_use == 0
    cli = await invoke("verify", image, "--to", url)
    assert cli.exit_code == 0, cli.stderr
    assert cli.stdout.startswith("verified ") and "identical" in cli.stdout
    assert "sig=" not in cli.stdout or "sig=REDACTED" in cli.stdout


@pytest.mark.parametrize(
    ("damage", "offset"),
    [
        ("changed byte in data", 3 * MiB + 777),
        ("cleared pages that hold data", 12 * MiB),
        ("data where the image has a hole", 16 * MiB),
        ("data where the image has written zeros", 8 * MiB + 4096),
    ],
)
async def test_differences_are_found(
    storage: StorageTarget, image: Path, damage: str, offset: int
) -> None:
    url = await uploaded(storage, "bad.vhd", image)
    client = storage.blob_client("bad.vhd")
    page = offset // 512 * 512
    if damage.startswith("cleared"):
        client.clear_page(offset=page, length=MiB)
    else:
        original = client.download_blob(offset=page, length=512).readall()
        changed = bytearray(original)
        changed[offset - page] ^= 0xFF
        client.upload_page(bytes(changed), offset=page, length=512)
    async with open_page_blob(url, existing=True) as sink:
        result = await verify_disk(image, sink, config=TransferConfig(chunk_size=MiB))
    assert not result.identical
    assert result.differences and result.differences[0] == offset
    assert result.footer_problem is None
    cli = await invoke("verify", image, "--to", url, "--json")
    assert cli.exit_code == 1
    assert json.loads(cli.stdout)["differences"][0] == offset
    assert f"differs from the image at offset(s) {offset}" in cli.stderr


async def test_footer_is_checked_but_not_its_timestamp(storage: StorageTarget, image: Path) -> None:
    url = await uploaded(storage, "footer.vhd", image)
    client = storage.blob_client("footer.vhd")
    # Another upload's footer: other timestamp and unique id, otherwise the same.
    other = fixed_vhd_footer(SIZE, timestamp=12345, unique_id=bytes(range(16)))
    client.upload_page(other, offset=SIZE, length=512)
    async with open_page_blob(url, existing=True) as sink:
        assert (await verify_disk(image, sink)).identical
    broken = bytearray(other)
    broken[60:64] = (3).to_bytes(4, "big")  # disk type 3: dynamic
    client.upload_page(bytes(broken), offset=SIZE, length=512)
    async with open_page_blob(url, existing=True) as sink:
        result = await verify_disk(image, sink)
    assert not result.identical and result.footer_problem
    assert "checksum" in result.footer_problem or "disk type" in result.footer_problem
    cli = await invoke("verify", image, "--to", url)
    assert cli.exit_code == 1 and "footer" in cli.stderr.lower()


async def test_wrong_size_is_a_difference(storage: StorageTarget, image: Path) -> None:
    storage.blob_client("small.vhd").create_page_blob(4 * MiB + 512)
    async with open_page_blob(storage.sas_url("small.vhd"), existing=True) as sink:
        result = await verify_disk(image, sink)
    assert not result.identical and "4194816 bytes" in (result.footer_problem or "")


async def test_upload_verify_option(storage: StorageTarget, image: Path, tmp_path: Path) -> None:
    cli = await invoke(
        "upload",
        image,
        "--to",
        storage.sas_url("v.vhd"),
        "--verify",
        "--journal-dir",
        tmp_path / "journals",
    )
    assert cli.exit_code == 0, cli.stderr
    lines = cli.stdout.splitlines()
    assert lines[0].startswith("uploaded ") and lines[1].startswith("verified ")
