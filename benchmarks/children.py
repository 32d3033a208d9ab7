"""Measured child processes: each tool runs through a tiny launcher that reaps it with
``wait4``, in a process group of its own, so its wall time, CPU time and peak RSS are its
own and nothing it starts outlives the run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from .tools import REPO

_started = time.monotonic()


def note(message: str) -> None:
    print(f"[{time.monotonic() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    """What one child process cost: wall time, CPU time and peak RSS (from wait4)."""

    argv: list[str]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_kib: int
    timed_out: bool
    stdout: str
    stderr: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def figures(self, loadavg_before: float) -> dict[str, Any]:
        """What the run cost, as a measured run's record starts (the 1-minute load average
        before it began beside)."""
        return {
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "user_s": round(self.user_s, 3),
            "sys_s": round(self.sys_s, 3),
            "peak_rss_mib": round(self.maxrss_kib / 1024, 1),
            "loadavg_1m_before": round(loadavg_before, 2),
        }

    def failure(self) -> str | None:
        if self.timed_out:
            return "timed out"
        if self.returncode != 0:
            tail = (self.stderr.strip() or self.stdout.strip())[-1500:]
            return f"exit status {self.returncode}: {tail}"
        return None


_live_children: set[int] = set()


def _kill_group(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return
            if done:
                return
            time.sleep(0.05)


#: A small launcher between this harness and each measured tool. Linux starts a child's
#: ru_maxrss at the RSS high-water mark of the process it was forked from (the mm that exec
#: replaced), so a tool started straight from this harness (numpy, the Azure SDK: ~80 MiB)
#: would never show less than that. From ``python -I -S`` (~7 MiB) the floor is negligible.
#: The launcher forks and execs the tool, reaps it with wait4 and writes what it cost.
LAUNCHER = """
import json, os, sys, time
result, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"cannot run {argv[0]}: {exc}\\n".encode())
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
with open(result, "w") as f:
    json.dump({"wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
               "maxrss_kib": usage.ru_maxrss, "returncode": code}, f)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_child(
    argv: list[str],
    *,
    log_dir: Path,
    label: str,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
) -> Child:
    """Run ``argv`` (through LAUNCHER) in a process group of its own, stdout and stderr to
    files, and return its wall time, CPU time and peak RSS. A timeout, an error or Ctrl-C
    ends the whole group."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path = log_dir / f"{label}.stdout"
    err_path = log_dir / f"{label}.stderr"
    result_path = log_dir / f"{label}.rusage.json"
    result_path.unlink(missing_ok=True)
    lock = threading.Lock()
    state = {"reaped": False, "timed_out": False}
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(result_path), *argv]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            launcher,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    _live_children.add(proc.pid)

    def on_timeout() -> None:
        with lock:
            if state["reaped"]:
                return
            state["timed_out"] = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, on_timeout)
    timer.daemon = True
    timer.start()
    try:
        # Wait without reaping: while the launcher is a zombie its pid, and so its process
        # group's id, cannot be reused, so ending leftovers in the group is safe.
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        outer_wall = time.perf_counter() - start
        with lock:
            state["reaped"] = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        _, status, outer = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        _live_children.discard(proc.pid)
    finally:
        timer.cancel()
        if proc.pid in _live_children:  # interrupted: end it and anything it started
            _kill_group(proc.pid)
            _live_children.discard(proc.pid)
    try:
        inner = json.loads(result_path.read_text())
    except (OSError, ValueError):  # killed before the launcher wrote it
        inner = {
            "wall_s": outer_wall,
            "user_s": outer.ru_utime,
            "sys_s": outer.ru_stime,
            "maxrss_kib": outer.ru_maxrss,
            "returncode": proc.returncode,
        }
    return Child(
        argv=argv,
        returncode=int(inner["returncode"]),
        wall_s=float(inner["wall_s"]),
        user_s=float(inner["user_s"]),
        sys_s=float(inner["sys_s"]),
        maxrss_kib=int(inner["maxrss_kib"]),
        timed_out=state["timed_out"],
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


def last_json(text: str) -> dict[str, Any] | None:
    """The last line of ``text`` that is a JSON object (or the whole text as one)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    return value
    with contextlib.suppress(ValueError):
        value = json.loads(text)
        if isinstance(value, dict):
            return value
    return None


def process_cpu_s(pid: int | None) -> float | None:
    """user+sys seconds of a running process (for Azurite), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, so every cleanup path runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        for pid in list(_live_children):
            _kill_group(pid)
