"""Bulk upload inputs: IMAGE=URL pairs and manifest files (YAML, JSON, lines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azrestore.errors import InputError
from azrestore.jobs.manifest import ManifestEntry, parse_pair, read_manifest

URL = "https://acct.blob.core.windows.net/vhds/a.vhd?sv=2023&sig=abc%3D"


def test_pairs() -> None:
    assert parse_pair(f"disk=1.raw={URL}") == ManifestEntry(Path("disk=1.raw"), URL)
    assert parse_pair("disk.raw") is None
    assert parse_pair("disk.raw=ftp://x/y") is None


def test_yaml_json_and_lines(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(f"- image: a.raw\n  to: '{URL}'\n  name: web\n")
    (tmp_path / "m.json").write_text(json.dumps([{"image": "/abs/b.raw", "url": URL}]))
    (tmp_path / "m.txt").write_text(f"# disks\n\n'with space.raw' {URL}\nc.raw {URL}\n")
    assert read_manifest(tmp_path / "m.yaml") == [ManifestEntry(tmp_path / "a.raw", URL, "web")]
    assert read_manifest(tmp_path / "m.json") == [ManifestEntry(Path("/abs/b.raw"), URL)]
    assert read_manifest(tmp_path / "m.txt") == [
        ManifestEntry(tmp_path / "with space.raw", URL),
        ManifestEntry(tmp_path / "c.raw", URL),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- image: a.raw\n", "needs 'image' and 'to'"),
        ("- [a.raw]\n", "expected a mapping"),
        (f"- image: a.raw\n  to: '{URL}'\n  size: 3\n", "unknown keys size"),
        ("- image: a.raw\n  to: 'file:///x?sig=SECRET'\n", "not an http\\(s\\) URL"),
        ("a.raw\n", "expected 'IMAGE URL'"),
        ("a.raw b.raw\n", ":1: not an http"),
    ],
)
def test_bad_manifests_name_the_place(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as caught:
        read_manifest(path)
    assert str(path) in str(caught.value) and "SECRET" not in str(caught.value)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the manifest"):
        read_manifest(tmp_path / "none.yaml")
