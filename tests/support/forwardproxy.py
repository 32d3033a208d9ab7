"""A real HTTP forward proxy on loopback for the tests: proxy.py (PyPI ``proxy.py``, a
dev extra), with Basic authentication, counting the requests it forwarded from its access
log. Chosen over tinyproxy or squid because pip installs it with the project's own dev
extras (no root, no system service), it tunnels CONNECT and proxies plain http, takes
``--basic-auth`` and logs one access line per forwarded request or tunnel."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tests.support.tools import unavailable

#: ``... server.access_log:393 - 127.0.0.1:35996 - GET host:port/path - ...`` (requests
#: refused for their credentials log ``None:None``)
_ACCESS = re.compile(r"access_log:\d+ - [^ ]+ - ([A-Z]+) ([^ /]+)([^ ]*)")


def require_proxy_py() -> None:
    """Skip (in CI, fail) unless proxy.py is importable."""
    if importlib.util.find_spec("proxy") is None:
        unavailable("proxy.py is not installed (pip install -e '.[dev]')")


@dataclass
class ForwardProxy:
    """proxy.py on 127.0.0.1 (a free port) requiring ``user:password``; a context manager
    that stops it (and its workers) on the way out."""

    workdir: Path
    user: str = "alice"
    password: str = "Pr0xy-s3cret"
    port: int = 0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.workdir / "proxy.log"

    def url(self, password: str | None = None) -> str:
        """The proxy's URL with credentials (``password`` instead of the right one)."""
        return f"http://{self.user}:{password or self.password}@127.0.0.1:{self.port}"

    def __enter__(self) -> ForwardProxy:
        require_proxy_py()
        port_file = self.workdir / "proxy.port"
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "--hostname",
                "127.0.0.1",
                "--port",
                "0",
                "--port-file",
                str(port_file),
                "--basic-auth",
                f"{self.user}:{self.password}",
                "--num-acceptors",
                "1",
                "--num-workers",
                "1",
                "--log-level",
                "INFO",
                "--log-file",
                str(self.log),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            self.port = self._wait_for_port(port_file)
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop()

    def _wait_for_port(self, port_file: Path) -> int:
        assert self._process is not None
        for _ in range(600):
            if self._process.poll() is not None:
                raise RuntimeError(f"proxy.py exited with {self._process.returncode}")
            text = port_file.read_text().strip() if port_file.exists() else ""
            if text.isdigit() and _accepts(int(text)):
                return int(text)
            time.sleep(0.05)
        raise RuntimeError("proxy.py did not start listening")

    def _stop(self) -> None:
        """SIGTERM to its process group (its acceptors and workers), then wait for it."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def requests(self, to: str | None = None) -> list[tuple[str, str]]:
        """(method, host:port) of every request forwarded or tunnel opened so far (to
        ``to``, a ``host:port``, when given), read from the access log. The log line is
        written when its connection ends: wait for the client to exit first."""
        if not self.log.exists():
            return []
        found = [
            (match[1], match[2])
            for match in _ACCESS.finditer(self.log.read_text(errors="replace"))
            if match[2] != "None:None"
        ]
        return [item for item in found if to is None or item[1] == to]

    def put_pages(self) -> int:
        """How many Put Page requests (``PUT ...?comp=page``) it forwarded."""
        if not self.log.exists():
            return 0
        text = self.log.read_text(errors="replace")
        return sum(
            1
            for match in _ACCESS.finditer(text)
            if match[1] == "PUT" and match[2] != "None:None" and "comp=page" in match[3]
        )

    def wait_for_requests(self, to: str | None = None) -> list[tuple[str, str]]:
        """:meth:`requests`, waiting (a few seconds at most) for one to be logged: proxy.py
        logs a connection once both ends have closed it."""
        for _ in range(100):
            if found := self.requests(to):
                return found
            time.sleep(0.05)
        return self.requests(to)


def _accepts(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
