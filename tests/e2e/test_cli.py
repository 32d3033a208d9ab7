"""The command line's uploads: exit codes, one-line errors, JSON output, what they write.

Uploads against Azurite behind the strict gateway: most run the typer app in-process
(CliRunner keeps stdout and stderr apart); Ctrl-C runs the installed ``azrestore`` script,
to see the real exit status. The tests that send no request are in tests/unit/cli/.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from azrestore.emulator.storage import FaultRule, GatewayThread
from azrestore.formats.sizes import MiB, blob_size, virtual_size
from azrestore.formats.vhd import VhdFooter
from tests.support.cli import assert_one_line_error, azrestore_script, invoke, small_image
from tests.support.images import expected_vhd_body, make_sparse_image
from tests.support.storage import StorageTarget


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty.img").write_bytes(b"")
    return tmp_path / "empty.img"


# -- upload against Azurite behind the strict gateway --------------------------------------


def read_blob(storage: StorageTarget, name: str) -> bytes:
    return storage.blob_client(name).download_blob().readall()


def assert_blob_is_vhd_of(storage: StorageTarget, name: str, image: Path) -> None:
    data = read_blob(storage, name)
    body = expected_vhd_body(image)
    assert len(data) == len(body) + 512
    assert data[:-512] == body
    assert VhdFooter.parse(data[-512:]).current_size == len(body)


def test_upload_json(tmp_path: Path, storage: StorageTarget) -> None:
    image = small_image(tmp_path)
    result = invoke("upload", image, "--to", storage.sas_url("a.vhd"), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    data = json.loads(result.stdout)
    size = image.stat().st_size
    assert data["disk_size"] == size
    assert data["virtual_size"] == virtual_size(size)
    assert data["blob_size"] == blob_size(size)
    assert data["bytes_uploaded"] + data["bytes_skipped"] == data["blob_size"]
    assert 0 < data["bytes_uploaded"] < data["blob_size"]  # the holes were not sent
    assert data["requests"] > 0 and data["retries"] == 0 and data["bytes_retried"] == 0
    assert data["url"].startswith(storage.blob_url("a.vhd"))
    assert "sig=" not in data["url"] or "sig=REDACTED" in data["url"]
    assert {"bytes_read", "seconds", "throughput_mib_s"} <= set(data)
    assert_blob_is_vhd_of(storage, "a.vhd", image)


def test_upload_existing_blob_needs_overwrite(tmp_path: Path, storage: StorageTarget) -> None:
    image = small_image(tmp_path)
    url = storage.sas_url("b.vhd")
    assert invoke("upload", image, "--to", url).exit_code == 0
    # The same image again: the journal shows the blob holds it already.
    again = invoke("upload", image, "--to", url)
    assert again.exit_code == 0 and "nothing to do" in again.stdout
    # Another image onto that blob needs --overwrite.
    (tmp_path / "other").mkdir()
    other = small_image(tmp_path / "other", size=2 * MiB)
    signature = url.partition("sig=")[2]
    line = assert_one_line_error(invoke("upload", other, "--to", url), 2)
    assert "already exists" in line and "--overwrite" in line
    assert signature not in line
    result = invoke("upload", other, "--to", url, "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert_blob_is_vhd_of(storage, "b.vhd", other)


def test_upload_with_connection_string_and_summary(tmp_path: Path, storage: StorageTarget) -> None:
    image = small_image(tmp_path)
    result = invoke(
        "upload",
        image,
        "--to",
        storage.blob_url("c.vhd"),
        "--connection-string",
        storage.connection_string,
        "--chunk-size",
        "256KiB",
        "--checksum",
        "crc64",
        "--max-bandwidth",
        "100MiB",
        "--concurrency",
        "4",
    )
    assert result.exit_code == 0, result.stderr
    # Not a terminal: no progress bar, just the summary line.
    assert result.stderr == ""
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("uploaded a ") and storage.blob_url("c.vhd") in result.stdout
    assert "0 retries" in result.stdout
    assert_blob_is_vhd_of(storage, "c.vhd", image)


def test_upload_counts_retries(
    tmp_path: Path, storage: StorageTarget, gateway: GatewayThread
) -> None:
    gateway.set_rules([FaultRule(operation="PutPage", status=503, nth=2)])
    image = small_image(tmp_path)
    result = invoke("upload", image, "--to", storage.sas_url("r.vhd"), "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["retries"] == 1 and data["bytes_retried"] > 0
    assert_blob_is_vhd_of(storage, "r.vhd", image)


def test_upload_refused_is_exit_1(
    tmp_path: Path, storage: StorageTarget, gateway: GatewayThread
) -> None:
    gateway.set_rules([FaultRule(operation="PutPage", status=403, code="AuthorizationFailure")])
    url = storage.sas_url("f.vhd")
    line = assert_one_line_error(invoke("upload", small_image(tmp_path), "--to", url), 1)
    assert "403" in line and storage.blob_url("f.vhd") in line
    assert url.partition("sig=")[2] not in line


def test_bad_image_creates_no_blob(tmp_path: Path, storage: StorageTarget) -> None:
    assert_one_line_error(invoke("upload", _empty(tmp_path), "--to", storage.sas_url("e")), 2)
    assert not storage.blob_client("e").exists()


def test_ctrl_c_is_exit_130_without_traceback(tmp_path: Path, storage: StorageTarget) -> None:
    image = make_sparse_image(tmp_path / "big.img", 32 * MiB, [(0, os.urandom(32 * MiB))])
    url = storage.sas_url("i.vhd")
    child = subprocess.Popen(
        [*azrestore_script(), "upload", str(image), "--to", url, "--max-bandwidth", "1MiB"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        blob = storage.blob_client("i.vhd")
        deadline = time.monotonic() + 60
        while not blob.exists():  # the upload has begun once the blob is created
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 130, stderr
    assert stdout == ""
    assert stderr == "azrestore: error: interrupted\n"


def test_formats_reach_every_upload_form(tmp_path: Path, storage: StorageTarget) -> None:
    """``--format`` and a manifest entry's ``format:`` are what each disk is opened with:
    raw uploads as raw; a format the image is not fails that disk alone (exit 2), before
    its blob is created, and the others are uploaded; then verify takes --format too."""
    one = make_sparse_image(tmp_path / "one.raw", 3 * MiB + 512, [(MiB, b"one" * 100)])
    two = make_sparse_image(tmp_path / "two.raw", 2 * MiB, [(0, b"two" * 100)])
    three = make_sparse_image(tmp_path / "three.raw", 2 * MiB, [(512, b"three")])
    manifest = tmp_path / "disks.yaml"
    manifest.write_text(
        f"- {{image: two.raw, to: '{storage.sas_url('fmt-two.vhd')}', format: raw}}\n"
        f"- {{image: three.raw, to: '{storage.sas_url('fmt-three.vhd')}', format: vmdk}}\n"
    )
    result = invoke(
        "upload",
        f"{one}={storage.sas_url('fmt-one.vhd')}",
        "--manifest",
        manifest,
        "--format",
        "raw",
        "--json",
    )
    assert result.exit_code == 2, result.stderr
    disks = {disk["name"]: disk for disk in json.loads(result.stdout)["disks"]}
    assert disks[str(one)]["ok"] and disks[str(two)]["ok"]
    failed = disks[str(three)]
    assert not failed["ok"] and failed["exit_code"] == 2 and str(three) in failed["error"]
    assert_blob_is_vhd_of(storage, "fmt-one.vhd", one)
    assert_blob_is_vhd_of(storage, "fmt-two.vhd", two)
    assert not storage.blob_client("fmt-three.vhd").exists()
    checked = invoke("verify", one, "--to", storage.sas_url("fmt-one.vhd"), "--format", "raw")
    assert checked.exit_code == 0, checked.stderr
