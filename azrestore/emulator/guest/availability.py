"""Whether this machine can run guest scripts for real: root, loop devices, mount
namespaces and the tools the sandbox uses; the reason when it cannot, found once."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from typing import Final

__all__ = ["SANDBOX_TOOLS", "sandbox_unavailable"]

#: The host tools the sandbox drives (the scripts bring their own needs: lsblk, blkid...).
SANDBOX_TOOLS: Final = ("unshare", "losetup", "partx", "mount", "umount", "mknod", "bash")


@functools.cache
def sandbox_unavailable() -> str | None:
    """Why guest scripts cannot run for real here (None when they can). Probed once."""
    if os.geteuid() != 0:
        return "guest scripts run for real only as root (the sandbox mounts and uses loop devices)"
    absent = [tool for tool in SANDBOX_TOOLS if shutil.which(tool) is None]
    if absent:
        return f"the guest sandbox needs {', '.join(absent)}, not installed"
    if not os.path.exists("/dev/loop-control") or not os.access("/dev/loop-control", os.W_OK):
        return "no loop devices here (/dev/loop-control is missing or not writable)"
    try:
        done = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "true"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot make a private mount namespace: {exc}"
    if done.returncode != 0:
        return f"cannot make a private mount namespace: {done.stderr.strip() or done.returncode}"
    try:
        found = subprocess.run(
            ["losetup", "--find"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no free loop device: {exc}"
    if found.returncode != 0:
        return f"no free loop device: {found.stderr.strip() or found.returncode}"
    return None
