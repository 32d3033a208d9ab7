"""Bulk upload inputs: IMAGE=URL pairs and manifest files (YAML, JSON, lines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azrestore.errors import InputError
from azrestore.jobs.manifest import ManifestEntry, parse_pair, read_manifest

URL = "https://acct.blob.core.windows.net/vhds/a.vhd?sv=2023&sig=abc%3D"


def test_pairs() -> None:
    assert parse_pair(f"disk=1.raw={URL}") == ManifestEntry("disk=1.raw", URL)
    assert parse_pair("disk.raw") is None
    assert parse_pair("disk.raw=ftp://x/y") is None


def test_yaml_json_and_lines(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(f"- image: a.raw\n  to: '{URL}'\n  name: web\n")
    (tmp_path / "m.json").write_text(json.dumps([{"image": "/abs/b.raw", "url": URL}]))
    (tmp_path / "m.txt").write_text(f"# disks\n\n'with space.raw' {URL}\nc.raw {URL}\n")
    assert read_manifest(tmp_path / "m.yaml") == [
        ManifestEntry(str(tmp_path / "a.raw"), URL, "web")
    ]
    assert read_manifest(tmp_path / "m.json") == [ManifestEntry("/abs/b.raw", URL)]
    assert read_manifest(tmp_path / "m.txt") == [
        ManifestEntry(str(tmp_path / "with space.raw"), URL),
        ManifestEntry(str(tmp_path / "c.raw"), URL),
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


# -- one target twice (issue 17) ------------------------------------------------------------

BLOB = "http://127.0.0.1:10000/devstoreaccount1/vhds/dual.vhd"


@pytest.mark.parametrize(
    "other",
    [
        BLOB,
        "http://localhost:10000/devstoreaccount1/vhds/dual.vhd",
        "HTTP://LocalHost:10000/devstoreaccount1/vhds/dual.vhd?sv=1&sig=OTHER",
        "http://[::1]:10000/devstoreaccount1/vhds/dual.vhd",
        "http://127.0.0.1:10000/devstoreaccount1/vhds/%64ual.vhd",
        "http://127.0.0.1:10000/devstoreaccount1/vhds/dual.vhd/",
        "http://127.0.0.1:10000/devstoreaccount1/vhds/dual.vhd#x",
    ],
)
def test_one_target_in_two_spellings_is_refused(other: str) -> None:
    from azrestore.jobs.manifest import check_distinct_targets

    entries = [
        ManifestEntry("a.raw", BLOB + "?sv=1&sig=SECRET"),
        ManifestEntry("b.raw", other),
    ]
    with pytest.raises(InputError, match=r"b\.raw.*same blob as a\.raw") as caught:
        check_distinct_targets(entries)
    assert "SECRET" not in str(caught.value) and "OTHER" not in str(caught.value)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "https://acct.blob.core.windows.net/vhds/a.vhd",
            "https://ACCT.blob.core.windows.net:443/vhds/a.vhd",
        ),
        (
            "https://acct.blob.core.windows.net./vhds/a.vhd",
            "https://acct.blob.core.windows.net/vhds//a.vhd/",
        ),
        (
            "http://acct.blob.core.windows.net/vhds/a%20b.vhd",
            "http://acct.blob.core.windows.net:80/vhds/a b.vhd",
        ),
    ],
)
def test_default_port_case_and_slashes(first: str, second: str) -> None:
    from azrestore.jobs.manifest import canonical_target, check_distinct_targets

    assert canonical_target(first) == canonical_target(second)
    with pytest.raises(InputError, match="same blob"):
        check_distinct_targets([ManifestEntry("a", first), ManifestEntry("b", second)])


@pytest.mark.parametrize(
    "other",
    [
        "http://127.0.0.1:10001/devstoreaccount1/vhds/dual.vhd",  # another port
        "https://127.0.0.1:10000/devstoreaccount1/vhds/dual.vhd",  # another scheme
        "http://127.0.0.1:10000/devstoreaccount1/vhds/Dual.vhd",  # blob names keep their case
        "http://127.0.0.1:10000/devstoreaccount1/other/dual.vhd",
        "http://10.0.0.1:10000/devstoreaccount1/vhds/dual.vhd",
        "http://127.0.0.1:10000/devstoreaccount1/vhds/dual.vhd2",
    ],
)
def test_different_targets_are_kept(other: str) -> None:
    from azrestore.jobs.manifest import check_distinct_targets

    check_distinct_targets([ManifestEntry("a.raw", BLOB), ManifestEntry("b.raw", other)])


def test_entries_take_a_format_and_nbd_urls(tmp_path: Path) -> None:
    nbd = "nbd+unix:///disk0?socket=/run/nbd.sock"
    (tmp_path / "m.yaml").write_text(
        f"- image: os.qcow2\n  to: '{URL}'\n  format: qcow2\n- image: '{nbd}'\n  to: '{URL}'\n"
    )
    assert read_manifest(tmp_path / "m.yaml") == [
        ManifestEntry(str(tmp_path / "os.qcow2"), URL, "", "qcow2"),
        ManifestEntry(nbd, URL),  # a URL is not made relative to the manifest's folder
    ]
    (tmp_path / "m.txt").write_text(f"nbd://host:10809/disk0 {URL}\n")
    assert read_manifest(tmp_path / "m.txt") == [ManifestEntry("nbd://host:10809/disk0", URL)]
    assert parse_pair(f"{nbd}={URL}") == ManifestEntry(nbd, URL)


@pytest.mark.parametrize(
    ("value", "message"),
    [("qcow3", "entry 1: format: 'qcow3' is not an image format"), ("3", "'format' is not")],
)
def test_bad_entry_format(tmp_path: Path, value: str, message: str) -> None:
    (tmp_path / "m.yaml").write_text(f"- image: a.raw\n  to: '{URL}'\n  format: {value}\n")
    with pytest.raises(InputError, match=message):
        read_manifest(tmp_path / "m.yaml")
