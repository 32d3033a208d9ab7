"""Locations: NBD URLs are names, never files; paths are joined and normalised; formats
are checked against FORMATS; one file under two spellings has one key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from azrestore.errors import InputError
from azrestore.sources.base import FORMATS
from azrestore.sources.locations import (
    check_format,
    file_key,
    is_url,
    join_location,
    location_stamp,
)

URLS = [
    "nbd://backup.example:10809/disk0",
    "nbd://127.0.0.1/export",
    "nbd+unix:///disk0?socket=/run/nbd.sock",
    "NBD+TCP://host/x",
]


@pytest.mark.parametrize("url", URLS)
def test_urls_are_kept_as_they_are(url: str, tmp_path: Path) -> None:
    assert is_url(url)
    assert join_location(tmp_path, url) == url  # not made relative, slashes kept
    assert file_key(url) is None
    assert location_stamp(url) == [url]


@pytest.mark.parametrize(
    "path", ["disk.raw", "/srv/disk.qcow2", "nbd.raw", "dir/nbd:/x", "https://x/y.vhd"]
)
def test_paths_are_not_urls(path: str) -> None:
    assert not is_url(path)
    assert not is_url(Path(path))


def test_paths_are_joined_and_normalised(tmp_path: Path) -> None:
    assert join_location(tmp_path, "a/../b//c.raw") == str(tmp_path / "b" / "c.raw")
    assert join_location(tmp_path, "/abs/./x.raw") == "/abs/x.raw"
    assert join_location(None, "rel/./x.raw") == "rel/x.raw"


def test_formats_are_checked() -> None:
    for name in FORMATS:
        assert check_format(name) == name
    assert check_format(None) is None
    with pytest.raises(InputError) as caught:
        check_format("qcow3", what="m.yaml: entry 2: format")
    message = str(caught.value)
    assert message.startswith("m.yaml: entry 2: format: 'qcow3' is not an image format")
    assert "raw, qcow2, vmdk, vhdx, vpc, vdi, nbd" in message and "\n" not in message


def test_one_file_under_two_names_has_one_key(tmp_path: Path) -> None:
    image = tmp_path / "disk.raw"
    image.write_bytes(b"x" * 512)
    os.symlink(image, tmp_path / "link.raw")
    os.link(image, tmp_path / "hard.raw")
    other = tmp_path / "other.raw"
    other.write_bytes(b"y" * 512)
    key = file_key(image)
    assert key is not None
    assert file_key(tmp_path / "link.raw") == file_key(str(tmp_path / "hard.raw")) == key
    assert file_key(other) != key
    assert file_key(tmp_path / "gone.raw") is None
    stamp = location_stamp(str(image))
    assert stamp[:2] == [str(image), 512]
    with pytest.raises(FileNotFoundError):
        location_stamp(str(tmp_path / "gone.raw"))
