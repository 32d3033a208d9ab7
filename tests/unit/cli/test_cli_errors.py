"""The command line's error edge: bad input and usage are exit 2 with one line, a failed
transfer exit 1 (secrets redacted), a traceback only with --debug. All of it before any
request is sent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from azrestore.cli.commands import inspect as inspect_command
from azrestore.cli.commands import upload as upload_command
from azrestore.errors import TransferError
from tests.support.cli import assert_one_line_error, invoke, run_script, small_image
from tests.support.qemu import encrypted_qcow2
from tests.support.tools import require

#: A SAS URL that is never contacted: the image check fails first.
UNUSED_URL = "https://account.blob.core.windows.net/c/disk.vhd?sv=2023-11-03&sig=SECRETSIG"


# -- bad input: exit 2 and one line -------------------------------------------------------


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "nope.img"


def _directory(tmp_path: Path) -> Path:
    (tmp_path / "dir.img").mkdir()
    return tmp_path / "dir.img"


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty.img").write_bytes(b"")
    return tmp_path / "empty.img"


def _encrypted_qcow2(tmp_path: Path) -> Path:
    require("qemu-img")
    return encrypted_qcow2(tmp_path / "disk.qcow2", "16M")


BAD_IMAGES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing": (_missing, "no such file"),
    "directory": (_directory, "directory"),
    "empty": (_empty, "empty"),
    "encrypted-qcow2": (_encrypted_qcow2, "encrypt"),
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

    monkeypatch.setattr(upload_command, "upload_to_page_blob", fail)
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
    async def broken(path: object, image_format: str | None = None) -> None:
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(inspect_command, "inspect_image", broken)
    line = assert_one_line_error(invoke("inspect", small_image(tmp_path)), 1)
    assert "RuntimeError" in line and "something; broke" in line and "--debug" in line
