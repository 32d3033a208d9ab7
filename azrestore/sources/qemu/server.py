"""One ``qemu-nbd`` child process exporting one image read-only on a Unix socket in a
private temporary directory: started, waited for until its socket answers, and stopped
(terminate, then kill) when :meth:`QemuNbd.stop` is called, also when starting fails.
Blocking: call in a worker thread.

It runs without ``--persistent``: it exits by itself when its last client (that finished
the handshake) disconnects. That alone does not stop it when azrestore is killed
(``kill -9``) before any handshake, or while a new connection is still in its handshake
(qemu-nbd only ends on the close of a negotiated one; seen in CI, where it then served
the image, and held its lock, for good). So it is also started under ``setpriv
--pdeathsig TERM`` (util-linux), from one long-lived thread: the kernel sends the parent
death signal when the *thread* that forked the child ends, so the fork must not come
from a worker thread that may retire while the image is in use.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from ...errors import InputError
from .info import image_directory, qemu_tool

#: Seconds qemu-nbd may take to open an image and listen.
START_TIMEOUT = 30.0
#: Seconds it gets to exit after SIGTERM before SIGKILL.
STOP_GRACE = 5.0

#: The thread every qemu-nbd is forked from: it lives as long as azrestore (see above).
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="azrestore-qemu-nbd-spawner")


def _dies_with_azrestore(command: list[str]) -> list[str]:
    """``command`` run so that it gets SIGTERM when azrestore ends, however it ends."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:  # not util-linux: the handshake rule above still holds
        return command
    return [setpriv, "--pdeathsig", "TERM", "--", *command]


class QemuNbd:
    """A running ``qemu-nbd`` serving ``image`` (of ``fmt``) to up to ``shared`` clients
    at :attr:`socket_path`."""

    def __init__(self, image: str, fmt: str, *, shared: int, shown: str) -> None:
        self.image = image
        self.format = fmt
        self.shared = shared
        self.shown = shown
        self._directory = tempfile.mkdtemp(prefix="azrestore-nbd-")
        self.socket_path = os.path.join(self._directory, "sock")
        self._log_path = os.path.join(self._directory, "log")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start qemu-nbd and wait until its socket accepts; raises InputError with
        qemu's message when it cannot serve the image (and leaves nothing running)."""
        command = [
            qemu_tool("qemu-nbd"),
            "--read-only",
            f"--shared={self.shared}",
            f"--format={self.format}",
            f"--socket={self.socket_path}",
            "--cache=writeback",
            "--aio=threads",
            "--",
            self.image,
        ]
        try:
            with open(self._log_path, "wb") as log:
                self._process = _SPAWNER.submit(
                    subprocess.Popen,
                    _dies_with_azrestore(command),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    close_fds=True,
                    cwd=image_directory(os.path.abspath(self.image)),
                    start_new_session=True,  # a terminal's Ctrl-C goes to azrestore alone
                ).result()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        delay = 0.005
        while True:
            if self._process.poll() is not None:
                raise InputError(f"{self.shown}: qemu-nbd cannot serve it: {self.log()}")
            if os.path.exists(self.socket_path):
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    probe.connect(self.socket_path)
                    return
                except OSError:
                    pass
                finally:
                    probe.close()
            if time.monotonic() > deadline:
                raise InputError(
                    f"{self.shown}: qemu-nbd did not start serving it in {START_TIMEOUT:.0f} s"
                )
            time.sleep(delay)
            delay = min(0.1, delay * 2)

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def exited(self, within: float) -> bool:
        """Whether qemu-nbd has exited, waiting up to ``within`` seconds: a killed qemu-nbd
        closes its sockets before its I/O threads are gone, and only then can it be
        reaped, so a reset connection may come first."""
        if self._process is None:
            return True
        try:
            self._process.wait(within)
        except subprocess.TimeoutExpired:
            return False
        return True

    def log(self) -> str:
        """What qemu-nbd wrote, as one line."""
        try:
            with open(self._log_path, "rb") as log:
                text = log.read(4096).decode("utf-8", "replace")
        except OSError:
            return "it said nothing"
        lines = [line.strip().removeprefix("qemu-nbd: ") for line in text.splitlines()]
        return "; ".join(line for line in lines if line) or "it exited and said nothing"

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and remove the private directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self._directory, ignore_errors=True)
