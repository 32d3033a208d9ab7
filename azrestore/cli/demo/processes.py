"""The processes the demo starts, and stopping every one of them: on Ctrl-C (the child
gets ``GRACE_SECONDS`` to stop what it started), SIGTERM, or an error. The demo is a child
subreaper, so that even a grandchild such as Azurite, which runs in its own session, comes
back to it if its parent dies."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from ...redact import redact_text
from .terminal import show_command

#: How long a child gets to stop by itself after Ctrl-C before it is killed.
GRACE_SECONDS = 20.0
#: Where Azurite keeps its data (see azrestore.emulator.azurite).
TMP = Path(tempfile.gettempdir())
AZURITE_TMP_PREFIX = "azrestore-azurite-"

#: Set by the SIGTERM handler: the children did not get the signal from the terminal.
_terminated = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def become_subreaper() -> None:
    """Orphaned descendants (Azurite, if azrestore died) are re-parented to this process,
    so :func:`stop_orphans` can find them. Linux only; a no-op elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        children = _children_of(todo.pop())
        found += children
        todo += children
    return found


def _kill_tree(pids: Sequence[int]) -> None:
    """SIGKILL these processes and the process groups they lead (not ours)."""
    own_group = os.getpgrp()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(pid)
            if group == pid and group != own_group:
                os.killpg(group, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)


def stop_orphans() -> int:
    """Kill and reap whatever descendant was re-parented to this process, and remove an
    orphaned Azurite's temporary directory (its working directory); how many there were."""
    orphans = _descendants(os.getpid())
    workdirs = []
    for pid in orphans:
        with contextlib.suppress(OSError):
            workdirs.append(Path(os.readlink(f"/proc/{pid}/cwd")))
    _kill_tree(orphans)
    for pid in orphans:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)
    for workdir in workdirs:
        if workdir.name.startswith(AZURITE_TMP_PREFIX) and workdir.parent == TMP:
            shutil.rmtree(workdir, ignore_errors=True)
    return len(orphans)


def run_child(argv: Sequence[str], *, shown: str) -> int:
    """Run a command on this terminal and return its exit status.

    On Ctrl-C the child (in our process group) gets the SIGINT too; it is given
    ``GRACE_SECONDS`` to stop what it started, then it and its descendants are killed.
    """
    show_command(redact_text(shown))
    sys.stdout.flush()
    child = subprocess.Popen(argv)
    try:
        return child.wait()
    except KeyboardInterrupt:
        if _terminated:  # SIGTERM came to us only: pass the interrupt on
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + GRACE_SECONDS
        with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        if child.poll() is None:
            _kill_tree([*_descendants(child.pid), child.pid])
            child.wait()
        raise


def terminated() -> bool:
    """Whether the interrupt came as SIGTERM (to this process only) rather than Ctrl-C."""
    return _terminated


@contextlib.contextmanager
def stopping_everything() -> Iterator[None]:
    """Catch SIGTERM like Ctrl-C, and stop every process left behind when leaving."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if left := stop_orphans():
            print(f"demo: stopped {left} process(es) left behind", file=sys.stderr)
