"""Reading partition tables in tests: our analysis of an image file, and sfdisk --json and
blkid as independent readers to check it against."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from azrestore.formats.layout import DiskLayout
from azrestore.formats.partitions import analyze_disk
from tests.support.disks import run


def analyze(disk: Path) -> DiskLayout:
    fd = os.open(disk, os.O_RDONLY)
    try:
        return analyze_disk(
            lambda offset, length: os.pread(fd, length, offset), disk.stat().st_size
        )
    finally:
        os.close(fd)


def sfdisk_json(disk: Path) -> dict[str, object]:
    table: dict[str, object] = json.loads(run("sfdisk", "--json", str(disk)))["partitiontable"]
    return table


def blkid_type(disk: Path, offset: int, size: int) -> str | None:
    result = subprocess.run(
        ["blkid", "-p", "-O", str(offset), "-S", str(size), "-o", "export", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    fields = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    kind = fields.get("TYPE")
    if kind == "vfat":
        return fields.get("VERSION", "").lower()  # FAT16 -> fat16, as we name them
    return kind


def assert_agrees_with_tools(disk: Path, layout: DiskLayout) -> None:
    """Our partitions are sfdisk's, and the file systems we name are blkid's."""
    table = sfdisk_json(disk)
    assert layout.scheme == {"gpt": "gpt", "dos": "mbr"}[str(table["label"])]
    theirs = table.get("partitions", [])
    assert isinstance(theirs, list)
    assert len(layout.partitions) == len(theirs)
    for ours, entry in zip(layout.partitions, theirs, strict=True):
        assert ours.number == int(entry["node"].removeprefix(str(disk)))
        assert ours.start == entry["start"] * 512
        assert ours.size == entry["size"] * 512
        if layout.scheme == "gpt":
            assert ours.type == entry["type"]
            assert ours.name == entry.get("name", "")
            assert ours.bootable == ("LegacyBIOSBootable" in entry.get("attrs", ""))
        else:
            assert int(ours.type, 16) == int(entry["type"], 16)
            assert ours.bootable == entry.get("bootable", False)
            if int(entry["type"], 16) in (0x05, 0x0F, 0x85):
                continue  # the extended container itself holds no file system
        assert ours.filesystem == blkid_type(disk, ours.start, ours.size)
