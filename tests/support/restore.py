"""A set of backed-up VM images and the helpers that restore a plan of them into the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from azrestore.azure.arm import ArmSettings
from azrestore.azure.controlplane import ControlPlane
from azrestore.cli.restore import RestoreView
from azrestore.emulator import Emulator
from azrestore.jobs.emulated import bootstrap_emulator
from azrestore.restore.outcome import RestoreReport
from azrestore.restore.plan import ResolvedPlan, load_plan, resolve_plan
from azrestore.restore.run import RestoreRun
from azrestore.restore.settings import RestoreSettings
from azrestore.transfer.config import TransferConfig
from tests.support import plans
from tests.support.plans import vm_id

ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
TIME_FACTOR = 0.002


def write_plan(directory: Path, backups: Path, **extra: Any) -> Path:
    plan = {
        "target": plans.target(),
        "proxy": {"vm": vm_id("azproxy"), "idle_timeout": 1},
        "helpers": plans.helpers(),
        "vms": [
            {
                "name": "web01",
                "size": "Standard_D2s_v5",
                "disks": [{"path": str(backups / "web01-os.raw"), "role": "os"}],
                "tags": {"app": "web"},
            },
            {
                "name": "dc01",
                "size": "Standard_D2s_v5",
                "disks": [{"path": str(backups / "dc01-os.raw"), "role": "os"}],
            },
            {
                "name": "db01",
                "size": "Standard_E4s_v5",
                "disks": [
                    {"path": str(backups / "db01-os.raw"), "role": "os"},
                    {"path": str(backups / "db01-data0.raw"), "role": "data", "lun": 0},
                    {"path": str(backups / "db01-data1.raw"), "role": "data", "lun": 1},
                ],
            },
        ],
        **extra,
    }
    path = directory / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


async def resolve(plan_path: Path) -> ResolvedPlan:
    return await resolve_plan(load_plan(plan_path), environ={})


async def run_plan(
    emulator: Emulator, resolved: ResolvedPlan, *, storage_connection_string: str | None = None
) -> RestoreReport:
    settings = ArmSettings.from_env({k: str(v) for k, v in emulator.info()["env"].items()})
    async with ControlPlane(settings) as control:
        await bootstrap_emulator(control, resolved)
        run = RestoreRun(
            resolved,
            control,
            config=TransferConfig(concurrency=4),
            settings=RestoreSettings(
                agent_timeout=30,
                agent_poll_interval=0.05,
                batch_window=1.0,
                storage_connection_string=storage_connection_string,
            ),
            observer=RestoreView(None),
        )
        return await run.run()
