"""NBD servers for tests (qemu-nbd, nbdkit) on a Unix socket or a loopback port: started,
waited for until they accept, and always stopped."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (just now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _accepts(unix: Path | None, port: int | None) -> bool:
    family = socket.AF_UNIX if unix is not None else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(unix) if unix is not None else ("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def serving(
    command: list[str], *, unix: Path | None = None, port: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (a server in the foreground) until it accepts on ``unix`` or
    ``port``; stop it (terminate, then kill) when the block ends."""
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while not _accepts(unix, port):
            if process.poll() is not None:
                assert process.stderr is not None
                raise AssertionError(f"{command[0]} exited: {process.stderr.read().decode()}")
            assert time.monotonic() < deadline, f"{command[0]} does not accept"
            time.sleep(0.02)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
