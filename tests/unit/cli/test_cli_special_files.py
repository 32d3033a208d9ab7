"""A FIFO, a socket or a character device given as the image is refused at once (exit 2,
one line) by every command that reads images, run as the console script with a timeout,
so that a hang (a FIFO opened before its type was checked waits for a writer forever)
fails the test rather than stalling it."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cli import assert_one_line_error, azrestore_script, small_image

#: Never contacted: the image check fails first.
UNUSED_URL = "https://account.blob.core.windows.net/c/disk.vhd?sv=2023-11-03&sig=SECRETSIG"
#: Far more than a refusal takes; a hang is killed here and fails.
TIMEOUT = 60


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.img"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "s.img"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        yield path


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [*azrestore_script(), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)


COMMANDS: dict[str, Callable[[Path, Path], list[str | Path]]] = {
    "inspect": lambda image, tmp: ["inspect", image],
    "inspect --json": lambda image, tmp: ["inspect", image, "--json"],
    "convert": lambda image, tmp: ["convert", image, tmp / "out.vhd"],  # the quick start
    "upload": lambda image, tmp: ["upload", image, "--to", UNUSED_URL],
    "verify": lambda image, tmp: ["verify", image, "--to", UNUSED_URL],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_fifo_is_refused_at_once(tmp_path: Path, command: str) -> None:
    image = _fifo(tmp_path)
    line = assert_one_line_error(run(*COMMANDS[command](image, tmp_path)), 2)
    assert f"{image}: is a FIFO (named pipe), not a disk image" in line
    assert "SECRETSIG" not in line
    assert not (tmp_path / "out.vhd").exists()


def test_a_fifo_behind_a_symlink_is_refused_at_once(tmp_path: Path) -> None:
    link = tmp_path / "disk.img"
    link.symlink_to(_fifo(tmp_path))
    line = assert_one_line_error(run("upload", link, "--to", UNUSED_URL), 2)
    assert "is a FIFO" in line


@pytest.mark.parametrize("command", ["inspect", "convert", "upload", "verify"])
def test_a_socket_is_refused(tmp_path: Path, unix_socket: Path, command: str) -> None:
    line = assert_one_line_error(run(*COMMANDS[command](unix_socket, tmp_path)), 2)
    assert f"{unix_socket}: is a socket, not a disk image" in line


@pytest.mark.parametrize("command", ["inspect", "convert", "upload", "verify"])
def test_a_character_device_is_refused(tmp_path: Path, command: str) -> None:
    line = assert_one_line_error(run(*COMMANDS[command](Path("/dev/null"), tmp_path)), 2)
    assert "/dev/null: is a character device, not a disk image" in line


def test_convert_onto_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    out = _fifo(tmp_path)
    result = run("convert", small_image(tmp_path), out, "--overwrite")
    line = assert_one_line_error(result, 2)
    assert f"{out}: is a FIFO or a socket" in line
    assert out.exists()
