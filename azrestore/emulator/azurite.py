"""Start and stop a local Azurite blob emulator (the storage service under the gateway).

Azurite is a Node.js program installed by ``make install`` into ``.tools/``.  It listens on
127.0.0.1 only, in its own process group so that :meth:`AzuriteProcess.stop` can end it and
anything it spawned.  Data goes to a temporary directory (benchmarks upload many GiB, which
would not fit ``--inMemoryPersistence``) that is removed on stop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import anyio.to_thread

from azrestore.emulator.lifecycle import StartStop
from azrestore.errors import AzRestoreError

__all__ = [
    "AZURITE_ACCOUNT",
    "AZURITE_KEY",
    "AzuriteProcess",
    "EmulatorError",
    "find_azurite",
]

AZURITE_ACCOUNT = "devstoreaccount1"
# The emulator's published well-known key (not a secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

_ENV_VAR = "AZRESTORE_AZURITE"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_BUNDLED = _REPO_ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0


class EmulatorError(AzRestoreError):
    """The local storage emulator is missing, or failed to start."""


def find_azurite() -> str:
    """The ``azurite-blob`` executable: $AZRESTORE_AZURITE, the repo's ``.tools``, or PATH.

    Raises :class:`EmulatorError` (telling the user to run ``make install``) when neither
    Azurite nor Node.js is found.
    """
    hint = "run `make install` to install Node.js packages into .tools/"
    candidate: str | None
    configured = os.environ.get(_ENV_VAR)
    if configured:
        candidate = configured if os.access(configured, os.X_OK) else None
        if candidate is None and _BUNDLED.exists():
            candidate = str(_BUNDLED)
    elif os.access(_BUNDLED, os.X_OK):
        candidate = str(_BUNDLED)
    else:
        candidate = shutil.which("azurite-blob")
    if candidate is None:
        where = f"${_ENV_VAR}={configured!r}" if configured else f"{_BUNDLED} or PATH"
        raise EmulatorError(f"Azurite (azurite-blob) not found at {where}: {hint}")
    # azurite-blob is a `#!/usr/bin/env node` script.
    if shutil.which("node") is None:
        raise EmulatorError(f"Node.js (node) is not on PATH, needed by Azurite: {hint}")
    return candidate


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _terminate(proc: subprocess.Popen[bytes], logs: list[IO[bytes]], tmp: str | None) -> None:
    """End the process group, close log files, remove the temporary tree (idempotent)."""
    if proc.poll() is None:
        for sig, timeout in ((signal.SIGTERM, _STOP_TIMEOUT), (signal.SIGKILL, _STOP_TIMEOUT)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=timeout)
                break
            except subprocess.TimeoutExpired:
                continue
    else:
        # Node may have left children in the group even though it exited itself.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    for log in logs:
        log.close()
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


class AzuriteProcess(StartStop):
    """One ``azurite-blob`` process on 127.0.0.1 (sync and async context manager).

    ``port=0`` picks a free port.  ``location`` is Azurite's workspace; by default a temporary
    directory that :meth:`stop` removes.  ``keep_alive_timeout`` (seconds) overrides Azurite's
    HTTP keep-alive (5 s by default, like the real emulator users meet).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        location: str | None = None,
        keep_alive_timeout: int | None = None,
    ) -> None:
        if host != "127.0.0.1":
            raise EmulatorError("Azurite is only run on 127.0.0.1")
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._location = location
        self._keep_alive_timeout = keep_alive_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., AzuriteProcess] | None = None
        self._stderr_path: Path | None = None

    # -- properties --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port Azurite listens on (only after :meth:`start`)."""
        if self._port is None:
            raise EmulatorError("Azurite is not running")
        return self._port

    @property
    def account_url(self) -> str:
        """``http://127.0.0.1:PORT/devstoreaccount1``."""
        return f"http://{self._host}:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        """A connection string for azure-storage-blob, pointing straight at Azurite."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={self.account_url};"
        )

    @property
    def running(self) -> bool:
        """Whether the process was started and is still alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start Azurite and wait until its port accepts connections (blocking)."""
        if self._proc is not None:
            return
        executable = find_azurite()
        tmp = tempfile.mkdtemp(prefix="azrestore-azurite-")
        try:
            location = self._location or os.path.join(tmp, "data")
            os.makedirs(location, exist_ok=True)
            # A port picked here may be taken before Azurite binds it: try a few times.
            attempts = 1 if self._requested_port else 3
            for attempt in range(attempts):
                port = self._requested_port or _free_port(self._host)
                if self._launch(executable, port, location, tmp, attempt):
                    return
        except BaseException:
            self.stop()
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _launch(self, executable: str, port: int, location: str, tmp: str, attempt: int) -> bool:
        stdout_path = Path(tmp) / f"stdout-{attempt}.log"
        stderr_path = Path(tmp) / f"stderr-{attempt}.log"
        argv = [
            executable,
            "--blobHost",
            self._host,
            "--blobPort",
            str(port),
            "--location",
            location,
            "--disableTelemetry",
            "--silent",
            "--loose",
            "--skipApiVersionCheck",
        ]
        if self._keep_alive_timeout is not None:
            argv += ["--blobKeepAliveTimeout", str(self._keep_alive_timeout)]
        out = open(stdout_path, "wb")  # noqa: SIM115 - closed by _terminate
        err = open(stderr_path, "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=tmp,
            start_new_session=True,
        )
        self._proc = proc
        self._stderr_path = stderr_path
        # Stops Azurite at interpreter exit if the owner forgot to.
        self._finalizer = weakref.finalize(self, _terminate, proc, [out, err], tmp)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                detail = self._log_tail(stderr_path) or self._log_tail(stdout_path)
                # Keep the temp tree for the next attempt; only this process is gone.
                out.close()
                err.close()
                self._finalizer.detach()
                self._proc = None
                if "EADDRINUSE" in detail and attempt < 2 and not self._requested_port:
                    return False
                raise EmulatorError(
                    f"Azurite exited with status {proc.returncode} while starting: {detail}"
                )
            if _port_open(self._host, port):
                self._port = port
                return True
            time.sleep(0.05)
        detail = self._log_tail(stderr_path)
        self.stop()
        raise EmulatorError(
            f"Azurite did not listen on port {port} in {_START_TIMEOUT:.0f} s: {detail}"
        )

    @staticmethod
    def _log_tail(path: Path) -> str:
        try:
            text = path.read_bytes()[-4000:].decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return text or "(no output)"

    def stop(self) -> None:
        """Stop Azurite (SIGTERM, then SIGKILL) and remove its temporary files; idempotent."""
        finalizer, self._finalizer = self._finalizer, None
        self._proc = None
        self._port = None
        if finalizer is not None:
            finalizer()

    async def __aenter__(self) -> Self:
        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)
