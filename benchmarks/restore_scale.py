"""How a restore scales with the number of VMs: 1, 4 and 12 identical small Linux VMs
restored against the local emulator, timed on the emulator's clock (the run's seconds
divided by the time factor: the simulated seconds Azure's operations would take), with
the ratios 4/1 and 12/1 against the target (12 VMs within 1.3x the time of one).

The helpers answer the preparation scripts with the emulator's recorded answers (its
canned Run Command rules, as ``run_emulated_restore`` uses by default), so what is
measured is the orchestration (uploads, attach/detach updates, run commands, VM creation,
agent waits), not the scripts' own run time. Each run checks that the proxy and helpers
end deallocated and no disk is left open for upload. Prints one JSON document.

    python -m benchmarks.restore_scale [--counts 1,4,12] [--time-factor 0.02]
        [--helpers 1] [--helper-size Standard_D8s_v5] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import yaml

from . import results
from .children import note
from .tools import compile_package

#: The target of the issue: 12 VMs within 1.3x the time of one.
TARGET_RATIO = 1.3
_SUB = "00000000-0000-0000-0000-00000000beef"
_SUBNET = (
    f"/subscriptions/{_SUB}/resourceGroups/network/providers/Microsoft.Network"
    "/virtualNetworks/vnet/subnets/default"
)


_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
_LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def _vm_id(name: str) -> str:
    return f"/subscriptions/{_SUB}/resourceGroups/infra/providers/Microsoft.Compute/virtualMachines/{name}"  # noqa: E501


def make_image(work: Path) -> Path:
    """A small Linux OS disk, as the tests' web01: 64 MiB, GPT with a FAT ESP and an
    ext4 root (small, so that the real time of its upload, multiplied by 1/time factor
    on the emulator's clock, does not hide the orchestration)."""
    image = work / "linux-os.raw"
    with image.open("wb") as handle:
        handle.truncate(64 << 20)
    subprocess.run(
        ["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(image)],
        input=f"label: gpt\nstart=2048, size=16M, type={_ESP}\ntype={_LINUX_FS}\n",
        text=True,
        check=True,
    )
    for offset, size, command in (
        (1, 16, ["mkfs.vfat", "-F", "32"]),
        (17, 40, ["mkfs.ext4", "-q", "-F"]),
    ):
        part = work / f"part-{offset}.fs"
        with part.open("wb") as handle:
            handle.truncate(size << 20)
        subprocess.run([*command, str(part)], check=True, capture_output=True)
        subprocess.run(
            ["dd", f"if={part}", f"of={image}", "bs=1M", f"seek={offset}", "conv=notrunc,sparse"],
            check=True,
            capture_output=True,
        )
    return image


def write_plan(work: Path, image: Path, count: int, helpers: int) -> Path:
    directory = work / f"vms-{count}"
    directory.mkdir()
    vms = []
    for index in range(count):
        copy = directory / f"vm{index:02d}-os.raw"
        subprocess.run(["cp", "--sparse=always", str(image), str(copy)], check=True)
        vms.append(
            {
                "name": f"vm{index:02d}",
                "size": "Standard_D2s_v5",
                "disks": [{"path": str(copy), "role": "os"}],
            }
        )
    linux = [_vm_id(f"helper-linux-{i}") for i in range(helpers)]
    plan = {
        "target": {
            "subscription": _SUB,
            "resource_group": "restored",
            "location": "westeurope",
            "subnet": _SUBNET,
        },
        "proxy": {"vm": _vm_id("azproxy"), "idle_timeout": 0},
        "helpers": {"linux": linux[0] if helpers == 1 else linux},
        "vms": vms,
    }
    path = directory / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


async def restore_once(plan: Path, time_factor: float, helper_size: str) -> dict[str, Any]:
    """Restore ``plan`` in a fresh emulator; the run's time on the emulator's clock, its
    batches, and what the emulator holds at the end."""
    from azrestore.azure.arm import ArmSettings
    from azrestore.azure.controlplane import ControlPlane
    from azrestore.emulator import Emulator
    from azrestore.jobs.emulated import bootstrap_emulator, emulated_preparation, emulator_environ
    from azrestore.jobs.restore import load_and_resolve, restore_resolved
    from azrestore.restore.settings import RestoreSettings

    resolved = await load_and_resolve(plan, emulator_environ())
    async with Emulator(time_factor=time_factor, run_command_rules=emulated_preparation()) as az:
        info = az.info()
        arm = ArmSettings.from_env({k: str(v) for k, v in info["env"].items()})
        async with ControlPlane(arm) as control:
            await bootstrap_emulator(control, resolved, helper_size=helper_size)
        settings = RestoreSettings(
            agent_timeout=max(60.0, 1200 * time_factor),
            agent_poll_interval=max(0.05, 10 * time_factor),
            batch_window=90 * time_factor,
            batch_max_wait=360 * time_factor,
        )
        started = time.monotonic()
        report = await restore_resolved(resolved, arm, settings=settings)
        wall = time.monotonic() - started
        await az.arm.wait_idle()
        state = az.arm.state()
        shared = [
            vm
            for vm in state.virtual_machines.values()
            if vm.name.startswith(("helper-", "azproxy"))
        ]
        operations = [
            entry.operation
            for entry in az.arm.log(polls=False)
            if entry.kind == "operation" and entry.outcome == "Succeeded"
        ]
    return {
        "vms": len(report.vms),
        "succeeded": sum(vm.status == "succeeded" for vm in report.vms),
        "wall_s": round(wall, 3),
        "emulator_s": round(report.seconds / time_factor, 1),
        "batches": [len(batch["vms"]) for batch in report.batches],
        "run_commands": operations.count("virtualMachines/runCommand"),
        "shared_vms_deallocated": all(vm.power_state == "deallocated" for vm in shared),
        "disks_left_open": sum(
            d.disk_state in ("ActiveUpload", "ActiveSAS") for d in state.disks.values()
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", default="1,4,12")
    parser.add_argument("--time-factor", type=float, default=0.02)
    parser.add_argument("--helpers", type=int, default=1, help="Linux helpers the plan names")
    parser.add_argument("--helper-size", default="Standard_D8s_v5")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--json-out",
        default="",
        metavar="FILE",
        help="also write the JSON here (default benchmarks/results/restore_scale.json;"
        " '-' for stdout only)",
    )
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    if not all(shutil.which(tool) for tool in ("sfdisk", "mkfs.ext4", "mkfs.vfat")):
        print("sfdisk, mkfs.ext4 and mkfs.vfat are needed (make install)", file=sys.stderr)
        return 2
    compile_package()
    started = results.started()
    runs: dict[int, list[dict[str, Any]]] = {count: [] for count in counts}
    with tempfile.TemporaryDirectory(prefix="azr-scale-") as work_dir:
        work = Path(work_dir)
        machine = results.machine_info(work)
        image = make_image(work)
        plans = {count: write_plan(work, image, count, args.helpers) for count in counts}
        for index in range(args.repeat):
            for count in counts:
                run = anyio.run(restore_once, plans[count], args.time_factor, args.helper_size)
                runs[count].append(run)
                note(
                    f"#{index} {count} VMs: {run['emulator_s']} s on the emulator's clock"
                    f" ({run['wall_s']} s wall), batches {run['batches']}"
                )
    medians = {count: statistics.median(r["emulator_s"] for r in runs[count]) for count in counts}
    base = medians[counts[0]]
    ok = all(
        r["succeeded"] == r["vms"] and r["shared_vms_deallocated"] and not r["disks_left_open"]
        for rs in runs.values()
        for r in rs
    )
    ratios = {f"{count}/{counts[0]}": round(medians[count] / base, 3) for count in counts[1:]}
    result: dict[str, Any] = {
        "benchmark": "restore_scale",
        "started": started,
        "machine": machine,
        "versions": results.versions(),
        "time_factor": args.time_factor,
        "helpers": args.helpers,
        "helper_size": args.helper_size,
        "scripts": "recorded (the emulator's canned Run Command answers: no script runs)",
        "clock": "emulator (the run's seconds / time factor)",
        "runs": {str(count): runs[count] for count in counts},
        "emulator_s": {str(count): medians[count] for count in counts},
        "ratios": ratios,
        "target_ratio": TARGET_RATIO,
        "target_met": all(value <= TARGET_RATIO for value in ratios.values()),
        "all_succeeded_and_clean": ok,
    }
    text = json.dumps(result, indent=2)
    results.write(text, results.json_out_path(args.json_out, "restore_scale"))
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
