"""A plan restores into a running ``azrestore emulator`` as a user runs it: the emulator
started as a command, its ``env`` taken from its JSON line, the subnet, proxy and helpers
created through the Azure SDK, then ``azrestore restore PLAN`` (not ``--emulator``)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import anyio
import pytest
from anyio.abc import ByteReceiveStream

from azrestore.azure.arm import ArmSettings
from azrestore.azure.controlplane import ControlPlane
from azrestore.jobs.emulated import bootstrap_emulator
from tests.support.disks import needs_tools
from tests.support.restore import resolve, write_plan

pytestmark = [pytest.mark.anyio, needs_tools]


async def _first_line(stream: ByteReceiveStream) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        line += await stream.receive(1)
    return line


async def test_a_plan_restores_into_a_running_emulator(backups: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "azrestore.cli.app"]
    async with await anyio.open_process(
        # The backups are not bootable Linux disks: their preparation is recorded.
        [*command, "emulator", "--json", "--time-factor", "0.002", "--scripts", "record"],
        stderr=None,
    ) as emulator:
        try:
            assert emulator.stdout is not None
            with anyio.fail_after(60):
                info = json.loads(await _first_line(emulator.stdout))
            env = {k: str(v) for k, v in info["env"].items()}
            plan = write_plan(tmp_path, backups)
            resolved = await resolve(plan)
            async with ControlPlane(ArmSettings.from_env(env)) as control:
                await bootstrap_emulator(control, resolved)  # what a user does with the SDK
            with anyio.fail_after(300):
                done = await anyio.run_process(
                    [*command, "restore", str(plan), "--json",
                     "--journal-dir", str(tmp_path / "journals")],
                    env={**os.environ, **env}, check=False,
                )  # fmt: skip
            assert done.returncode == 0, done.stderr.decode()
            report = json.loads(done.stdout)
            assert {vm["status"] for vm in report["vms"]} == {"succeeded"}, report
            for vm in report["vms"]:
                assert "prepare" in vm["steps"] and vm["steps"][-1] == "done", vm
        finally:
            emulator.send_signal(signal.SIGTERM)
            with anyio.move_on_after(60) as waited:
                await emulator.wait()
            if waited.cancelled_caught:
                emulator.kill()
                await emulator.wait()
    assert emulator.returncode == 0
