"""The command line: exit codes, one-line errors, JSON output, and what it writes.

Most tests run the typer app in-process (CliRunner keeps stdout and stderr apart); a few
run the installed ``azrestore`` script, to see real exit statuses and signals.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from rich.console import Console

from azrestore.cli import main as cli
from azrestore.cli.progress import CopyProgress, TransferProgress
from azrestore.emulator.storage import FaultRule, GatewayThread
from azrestore.errors import TransferError
from azrestore.formats.sizes import SECTOR, blob_size, virtual_size
from azrestore.formats.vhd import VhdFooter
from azrestore.sources.report import inspect_image
from azrestore.transfer.progress import EventKind, ProgressEvent, TransferStats
from tests.support.cli import assert_one_line_error, azrestore_script, invoke, run_script
from tests.support.images import MiB, expected_vhd_body, make_sparse_image
from tests.support.storage import StorageTarget
from tests.support.tools import needs, require

needs_qemu = needs("qemu-img")
needs_sgdisk = needs("sgdisk")

#: A SAS URL that is never contacted: the image check fails first.
UNUSED_URL = "https://account.blob.core.windows.net/c/disk.vhd?sv=2023-11-03&sig=SECRETSIG"


def small_image(tmp_path: Path, size: int = 3 * MiB + 3 * SECTOR) -> Path:
    """A sparse image whose size is not a whole MiB, with data at both ends."""
    return make_sparse_image(
        tmp_path / "disk.img",
        size,
        [(0, b"boot" * 128), (MiB + 4096, os.urandom(70_000)), (size - SECTOR, b"\xaa" * SECTOR)],
    )


def gpt_image(tmp_path: Path) -> Path:
    image = make_sparse_image(tmp_path / "gpt.img", 9 * MiB + 7 * SECTOR, [])
    subprocess.run(
        ["sgdisk", "-n1:2048:+2M", "-t1:ef00", "-n2:0:0", "-t2:8300", str(image)],
        check=True,
        capture_output=True,
    )
    return image


# -- bad input: exit 2 and one line -------------------------------------------------------


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "nope.img"


def _directory(tmp_path: Path) -> Path:
    (tmp_path / "dir.img").mkdir()
    return tmp_path / "dir.img"


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty.img").write_bytes(b"")
    return tmp_path / "empty.img"


def _qcow2(tmp_path: Path) -> Path:
    require("qemu-img")
    path = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    return path


BAD_IMAGES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (_missing, "no such file"),
    "directory": (_directory, "directory"),
    "empty": (_empty, "empty"),
    "qcow2": (_qcow2, "qcow2"),
}


@pytest.mark.parametrize("command", ["inspect", "convert", "upload"])
@pytest.mark.parametrize("kind", list(BAD_IMAGES))
def test_bad_image_is_exit_2_with_one_line(tmp_path: Path, command: str, kind: str) -> None:
    make, reason = BAD_IMAGES[kind]
    image = make(tmp_path)
    if command == "inspect":
        result = invoke("inspect", image)
    elif command == "convert":
        result = invoke("convert", image, tmp_path / "out.vhd")
    else:
        result = invoke("upload", image, "--to", UNUSED_URL)
    line = assert_one_line_error(result, 2)
    assert str(image) in line and reason in line
    assert not (tmp_path / "out.vhd").exists()


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--chunk-size", "lots", "--chunk-size"),
        ("--chunk-size", "4 parsecs", "--chunk-size"),
        ("--chunk-size", "3MB", "multiple of 512"),  # parses, but is not whole sectors
        ("--chunk-size", "8MiB", "4 MiB"),  # larger than a Put Page
        ("--max-bandwidth", "fast", "--max-bandwidth"),
        ("--max-bandwidth", "0", "bandwidth"),
        ("--concurrency", "0", "concurrency"),
        ("--checksum", "sha1", "--checksum"),
    ],
)
def test_bad_option_is_exit_2_with_one_line(
    tmp_path: Path, option: str, value: str, expected: str
) -> None:
    image = small_image(tmp_path)
    line = assert_one_line_error(invoke("upload", image, "--to", UNUSED_URL, option, value), 2)
    assert expected in line


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    image = small_image(tmp_path)
    assert "--to" in assert_one_line_error(invoke("upload", image), 2)
    assert "bogus" in assert_one_line_error(invoke("bogus"), 2)
    assert "--frobnicate" in assert_one_line_error(invoke("inspect", image, "--frobnicate"), 2)


def test_script_exit_status_and_streams(tmp_path: Path) -> None:
    """The installed script: real exit statuses, the error on stderr only."""
    line = assert_one_line_error(run_script("inspect", tmp_path / "nope.img"), 2)
    assert "nope.img" in line
    assert_one_line_error(run_script("upload", small_image(tmp_path), "--chunk-size", "x"), 2)
    version = run_script("--version")
    assert version.returncode == 0 and version.stdout.startswith("azrestore ")


# -- tracebacks and secrets ---------------------------------------------------------------


def test_traceback_only_with_debug(tmp_path: Path) -> None:
    missing = tmp_path / "nope.img"
    plain = run_script("inspect", missing)
    assert "Traceback" not in plain.stderr
    assert_one_line_error(plain, 2)
    debug = run_script("--debug", "inspect", missing)
    assert debug.returncode == 2
    assert debug.stdout == ""
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert "InputError" in debug.stderr
    assert debug.stderr.splitlines()[-1] == f"azrestore: error: {missing}: no such file"


def test_failed_transfer_is_exit_1_and_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fail(*args: object, **kwargs: object) -> None:
        raise TransferError(f"{UNUSED_URL}: Put Page bytes 0-511: failed after 8 attempts")

    monkeypatch.setattr(cli, "_upload", fail)
    image = small_image(tmp_path)
    line = assert_one_line_error(invoke("upload", image, "--to", UNUSED_URL), 1)
    assert "failed after 8 attempts" in line
    assert "SECRETSIG" not in line and "sig=REDACTED" in line
    debug = invoke("--debug", "upload", image, "--to", UNUSED_URL)
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr and "SECRETSIG" not in debug.stderr


def test_unexpected_error_is_exit_1_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(path: object) -> None:
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(cli, "inspect_image", broken)
    line = assert_one_line_error(invoke("inspect", small_image(tmp_path)), 1)
    assert "RuntimeError" in line and "something; broke" in line and "--debug" in line


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


# -- convert ------------------------------------------------------------------------------


@needs_qemu
def test_convert_json_and_qemu_agrees(tmp_path: Path) -> None:
    image = small_image(tmp_path)
    out = tmp_path / "disk.vhd"
    result = invoke("convert", image, out, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    data = json.loads(result.stdout)
    padded = virtual_size(image.stat().st_size)
    assert padded == 4 * MiB
    assert data["output"] == str(out)
    assert data["disk_size"] == image.stat().st_size
    assert data["virtual_size"] == padded and data["blob_size"] == padded + 512
    assert out.stat().st_size == padded + 512
    compare = subprocess.run(
        ["qemu-img", "compare", "-f", "raw", str(image), "-F", "vpc", str(out)],
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr
    assert "identical" in compare.stdout.lower()
    info = subprocess.run(
        ["qemu-img", "info", "-f", "vpc", "--output=json", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(info.stdout)["virtual-size"] == padded


def test_convert_refuses_to_overwrite(tmp_path: Path) -> None:
    image = small_image(tmp_path)
    out = tmp_path / "disk.vhd"
    out.write_bytes(b"keep")
    line = assert_one_line_error(invoke("convert", image, out), 2)
    assert str(out) in line and "--overwrite" in line
    assert out.read_bytes() == b"keep"
    result = invoke("convert", image, out, "--overwrite")
    assert result.exit_code == 0, result.stderr
    # Not a terminal: no progress, one summary line.
    assert result.stderr == ""
    assert result.stdout.count("\n") == 1 and result.stdout.startswith(f"wrote {out}")
    assert out.stat().st_size == blob_size(image.stat().st_size)


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


# -- the progress renderer ----------------------------------------------------------------


def _event(uploaded: int, skipped: int, retries: int = 0) -> ProgressEvent:
    stats = TransferStats(
        disk_size=8 * MiB,
        virtual_size=8 * MiB,
        blob_size=8 * MiB + 512,
        bytes_uploaded=uploaded,
        bytes_skipped=skipped,
        retries=retries,
        seconds=1.0,
    )
    return ProgressEvent(EventKind.WRITTEN, stats)


def test_progress_bar_on_a_terminal() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100, color_system=None)
    with TransferProgress(console) as progress:
        assert progress.live
        for n in range(1, 5):
            progress(_event(n * 512 * 1024, n * 512 * 1024, retries=n - 1))
    output = screen.getvalue()
    # The last numbers are drawn on exit: 4 MiB of 8 MiB + 512 done, 3 retries.
    assert "4.0/8.0 MiB" in output and "sent 2.0 MiB, 3 retries" in output
    assert " 50%" in output


def test_no_progress_off_a_terminal() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=False)
    with TransferProgress(console) as progress, CopyProgress(console) as copy:
        assert not progress.live and not copy.live
        progress(_event(MiB, MiB))
        copy(MiB, 2 * MiB)
    assert screen.getvalue() == ""
