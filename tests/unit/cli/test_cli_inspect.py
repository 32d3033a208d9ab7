"""``azrestore inspect``: the JSON report and the table."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import anyio

from azrestore.formats.sizes import SECTOR, MiB
from azrestore.sources.report import inspect_image
from tests.support.cli import invoke
from tests.support.images import make_sparse_image
from tests.support.tools import needs

needs_sgdisk = needs("sgdisk")


def gpt_image(tmp_path: Path) -> Path:
    image = make_sparse_image(tmp_path / "gpt.img", 9 * MiB + 7 * SECTOR, [])
    subprocess.run(
        ["sgdisk", "-n1:2048:+2M", "-t1:ef00", "-n2:0:0", "-t2:8300", str(image)],
        check=True,
        capture_output=True,
    )
    return image


# -- inspect ------------------------------------------------------------------------------


@needs_sgdisk
def test_inspect_json(tmp_path: Path) -> None:
    image = gpt_image(tmp_path)
    result = invoke("inspect", image, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert set(report) >= {
        "path",
        "disk_size",
        "allocated_bytes",
        "partition_scheme",
        "partitions",
        "firmware",
        "os_family",
        "generation",
        "vhd",
    }
    size = image.stat().st_size
    assert report["path"] == str(image)
    assert report["disk_size"] == size
    assert 0 < report["allocated_bytes"] <= size
    assert report["partition_scheme"] == "gpt"
    assert len(report["partitions"]) == 2
    assert report["firmware"] == "uefi" and report["generation"] == "V2"
    assert report["vhd"]["virtual_size"] == 10 * MiB
    assert report["vhd"]["blob_size"] == 10 * MiB + 512
    assert set(report["vhd"]["geometry"]) == {"cylinders", "heads", "sectors_per_track"}
    # The CLI adds nothing and drops nothing.
    assert report == anyio.run(inspect_image, image).to_json()


@needs_sgdisk
def test_inspect_table(tmp_path: Path) -> None:
    image = gpt_image(tmp_path)
    result = invoke("inspect", image)
    assert result.exit_code == 0, result.stderr
    assert "GPT, 2 partition(s)" in result.stdout
    assert f"{10 * MiB:,} bytes" in result.stdout  # the virtual size
    assert f"{10 * MiB + 512:,} bytes" in result.stdout  # the blob size
    assert "EFI system" in result.stdout
