"""The partition analysis as a whole: no table, partitions past the end, the JSON, and
inspect_image (the async wrapper over a real file)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from azrestore.formats.layout import DiskLayout, Partition
from azrestore.formats.partition_types import ESP_GUID, LINUX_FS_GUID
from azrestore.formats.partitions import analyze_disk
from azrestore.formats.sizes import MiB
from tests.support.disks import mkfs, needs_tools, new_disk, put, sfdisk
from tests.support.partitions import analyze


def test_no_table(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 8 * MiB)
    assert analyze(disk) == DiskLayout("none", (), "unknown", "unknown", None)
    assert analyze_disk(lambda offset, length: b"", 0).scheme == "none"
    assert analyze_disk(lambda offset, length: b"\x55\xaa", 100).scheme == "none"


@needs_tools
def test_partition_past_the_end(tmp_path: Path) -> None:
    disk = new_disk(tmp_path, 64 * MiB)
    sfdisk(disk, "label: dos\nstart=2048, type=83\n")
    os.truncate(disk, 32 * MiB)
    layout = analyze(disk)
    assert layout.partitions[0].size == 63 * MiB
    assert any("past the end" in warning for warning in layout.warnings)


def test_to_json() -> None:
    layout = DiskLayout(
        "mbr",
        (Partition(1, MiB, 2 * MiB, "0x83", "Linux", bootable=True, filesystem="ext4"),),
        "bios",
        "linux",
        "V1",
    )
    assert json.loads(json.dumps(layout.to_json())) == {
        "scheme": "mbr",
        "partitions": [
            {
                "number": 1,
                "start": MiB,
                "size": 2 * MiB,
                "type": "0x83",
                "type_name": "Linux",
                "name": "",
                "bootable": True,
                "filesystem": "ext4",
            }
        ],
        "firmware": "bios",
        "os_family": "linux",
        "generation": "V1",
        "filesystem": None,
        "warnings": [],
    }


@needs_tools
@pytest.mark.anyio
async def test_inspect_image(tmp_path: Path) -> None:
    from azrestore.sources.report import inspect_image

    disk = new_disk(tmp_path, 64 * MiB + 4096)  # not whole MiB: the VHD rounds up
    sfdisk(disk, f"label: gpt\nstart=2048, size=16M, type={ESP_GUID}\ntype={LINUX_FS_GUID}\n")
    put(disk, 17 * MiB, mkfs(tmp_path, "ext4", 32 * MiB))
    report = await inspect_image(disk)
    assert report.layout == analyze(disk)
    assert report.disk_size == 64 * MiB + 4096
    assert 0 < report.allocated_bytes < report.disk_size
    assert report.virtual_size == 65 * MiB
    assert report.blob_size == 65 * MiB + 512
    info = json.loads(json.dumps(report.to_json()))
    assert info["path"] == str(disk)
    assert (info["partition_scheme"], info["firmware"], info["os_family"]) == (
        "gpt",
        "uefi",
        "linux",
    )
    assert info["generation"] == "V2"
    assert [p["filesystem"] for p in info["partitions"]] == [None, "ext4"]
    # 65 MiB = 133120 sectors: 17 sectors per track fails, 31 fits (VHD spec algorithm).
    assert info["vhd"] == {
        "virtual_size": 65 * MiB,
        "blob_size": 65 * MiB + 512,
        "geometry": {"cylinders": 978, "heads": 8, "sectors_per_track": 17},
    }


@pytest.mark.anyio
async def test_inspect_image_refuses_a_missing_file_and_reads_a_fixed_vhd(tmp_path: Path) -> None:
    from azrestore.errors import InputError
    from azrestore.formats.vhd import fixed_vhd_footer
    from azrestore.sources.report import inspect_image

    with pytest.raises(InputError, match="no such file"):
        await inspect_image(tmp_path / "missing.img")
    vhd = tmp_path / "disk.vhd"
    with vhd.open("wb") as file:
        file.truncate(MiB)
        file.seek(MiB)
        file.write(fixed_vhd_footer(MiB))
    report = await inspect_image(vhd)  # a fixed VHD is read as the disk it holds
    assert (report.format, report.disk_size) == ("vpc", MiB)
