"""`azrestore emulator --json`: one JSON line when ready, an environment that points
azrestore at it (through the link its options model), and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from azrestore.formats.sizes import MiB
from tests.support.images import make_sparse_image

KEYS = {"arm_endpoint", "blob_endpoint", "storage_connection_string", "ca_bundle", "env"}


def test_emulator_command_serves_until_sigterm(tmp_path: Path) -> None:
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "azrestore.cli.app",
            "emulator",
            "--json",
            "--time-factor",
            "0.002",
            "--link",
            "rtt=2ms,rate=1Gbit/s",
            "--blob-targets",
            "standard",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as server:
        try:
            _serve_and_use(server, tmp_path)
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    # Azurite, started by the emulator in the same session, is gone too.
    with pytest.raises(ProcessLookupError):
        os.killpg(server.pid, 0)


def _serve_and_use(server: subprocess.Popen[str], tmp_path: Path) -> None:
    assert server.stdout is not None
    info = json.loads(server.stdout.readline())
    assert set(info) >= KEYS and "subscription_id" in info
    assert info["network"] == {
        "link": "rtt=2ms,rate=1Gbit/s",
        "blob_targets": "500 requests/s, 60 MiB/s",
        "account_targets": "none",
    }
    env = {**os.environ, **{k: str(v) for k, v in info["env"].items()}}
    assert {"AZRESTORE_ARM_ENDPOINT", "AZRESTORE_CA_BUNDLE", "AZURE_SUBSCRIPTION_ID"} <= set(
        info["env"]
    )
    image = make_sparse_image(tmp_path / "disk.raw", 21 * MiB, [(0, b"x" * 4096)])
    disk = (
        f"/subscriptions/{info['subscription_id']}/resourceGroups/rg"
        "/providers/Microsoft.Compute/disks/d1"
    )
    upload = subprocess.run(
            [sys.executable, "-m", "azrestore.cli.app", "upload", str(image),
             "--to-disk", disk, "--location", "westeurope", "--json"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert upload.returncode == 0, upload.stderr
    assert json.loads(upload.stdout)["disk_state"] == "Unattached"
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=60) == 0, server.stderr.read() if server.stderr else ""
