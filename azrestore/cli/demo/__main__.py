"""``python -m azrestore.cli.demo``: the demo script (see :mod:`azrestore.cli.demo`)."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...emulator.arm import DEFAULT_SUBSCRIPTION
from ..edge import report_error
from .images import LINUX_EXPORT, LINUX_IMAGE, WINDOWS_EXPORT, WINDOWS_IMAGE, make_backups
from .processes import become_subreaper, run_child, stopping_everything, terminated
from .terminal import console, say, step
from .tools import DemoError, preflight

PLAN = "plan.yaml"

#: ``azrestore restore --time-factor``: simulated Azure takes ~300 s (at factor 1) to
#: restore the two VMs. Measured: at 0.05 the restore command takes ~30 s (its report
#: says ~21 s; starting and stopping the emulator is the rest), the whole demo ~40 s;
#: at 0.002 the command takes ~10 s, most of it starting up.
TIME_FACTOR = 0.05
QUICK_TIME_FACTOR = 0.002
#: The plan's bandwidth cap (for the whole run), so that the disks' rows stay on screen.
DEMO_BANDWIDTH = "6MiB/s"


@dataclass(frozen=True)
class Options:
    out: Path
    quick: bool

    @property
    def time_factor(self) -> float:
        return QUICK_TIME_FACTOR if self.quick else TIME_FACTOR

    @property
    def random_mib(self) -> int:
        """MiB of incompressible data per image (fewer when quick)."""
        return 1 if self.quick else 6


def azrestore(*args: str) -> list[str]:
    return [sys.executable, "-m", "azrestore.cli", *args]


def run_azrestore(*args: str, what: str) -> None:
    status = run_child(azrestore(*args), shown=shlex.join(["azrestore", *args]))
    if status == 130:
        raise KeyboardInterrupt
    if status != 0:
        raise DemoError(f"{what} exited with status {status}")


# -- the plan -----------------------------------------------------------------------------


def _vm_id(name: str, group: str = "infra") -> str:
    return (
        f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{group}"
        f"/providers/Microsoft.Compute/virtualMachines/{name}"
    )


def plan_text(options: Options) -> str:
    subnet = (
        f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/network/providers"
        "/Microsoft.Network/virtualNetworks/vnet/subnets/default"
    )
    transfer = (
        ""
        if options.quick
        else f"transfer:\n  max_bandwidth: {DEMO_BANDWIDTH}   # so that the disks' progress shows\n"
    )
    return f"""\
# The azrestore demo's restore plan (see `azrestore plan example` for every key).
# With --emulator the subnet, proxy and helpers below are created in a fresh local Azure.
version: 1
target:
  subscription: {DEFAULT_SUBSCRIPTION}
  resource_group: restored
  location: westeurope
  subnet: {subnet}
  tags: {{restored-by: azrestore-demo}}
proxy:
  vm: {_vm_id("azproxy")}
  idle_timeout: 30
helpers:
  # No Windows helper: the Linux one prepares Windows disks too, offline (ntfs-3g, hivex).
  linux: {_vm_id("helper-linux")}
{transfer}vms:
  - name: web01
    size: Standard_D2s_v5
    # os and generation: auto (Linux, V2 from the EFI system partition)
    disks:   # a {LINUX_EXPORT.what}: the format is found from the file's signature
      - {{path: {LINUX_IMAGE}, role: os}}
    tags: {{app: web}}
  - name: dc01
    size: Standard_D2s_v5
    # os and generation: auto (Windows, V1 from the active MBR partition)
    disks:   # a {WINDOWS_EXPORT.what}
      - {{path: {WINDOWS_IMAGE}, role: os}}
    tags: {{app: directory}}
"""


def write_plan(options: Options) -> Path:
    path = options.out / PLAN
    path.write_text(plan_text(options))
    say(path.read_text().rstrip())  # soft-wrapped: the resource ids are long
    return path


def demo(options: Options) -> None:
    started = time.monotonic()
    preflight()
    options.out.mkdir(parents=True, exist_ok=True)

    step(
        f"making two sample backups in {options.out}/ as backup products hand them over:"
        f" a {LINUX_EXPORT.what} and a {WINDOWS_EXPORT.what}"
    )
    linux, _ = make_backups(options.out, options.random_mib)

    step(
        f"inspecting web01's {LINUX_EXPORT.subformat} {LINUX_EXPORT.format.upper()}:"
        " its format, what the disk in it holds and the Azure VM it can become"
    )
    run_azrestore("inspect", str(linux), what="azrestore inspect")

    step(f"writing the restore plan {options.out / PLAN}: two VMs, a proxy, a helper")
    plan = write_plan(options)

    step("checking the plan and the images, and listing the steps (a dry run touches nothing)")
    run_azrestore("restore", str(plan), "--emulator", "--dry-run", what="the dry run")

    step(
        "restoring both VMs into a fresh local Azure (Azurite behind the strict gateway,"
        " and the Resource Manager simulator)"
    )
    say(
        "Both VMs run at once: upload the disk through the proxy (read out of its VMDK or"
        " VHDX, only the allocated parts), mount it on the helper, prepare it, unmount,"
        " register the VM, power it on and wait for its agent. The Linux helper prepares"
        " both disks: azrestore's scripts run for real (as root, in a sandbox over the"
        " disks' bytes) where this machine can, the Windows one editing its registry"
        " offline with ntfs-3g and hivex, and the VM agent comes up only on a disk they"
        " prepared."
        f" Simulated Azure here is {1 / options.time_factor:g} times faster than Azure."
    )
    run_azrestore(
        "restore",
        str(plan),
        "--emulator",
        "--time-factor",
        f"{options.time_factor:g}",
        what="azrestore restore",
    )
    script = Path(sys.executable).with_name("azrestore")
    name = os.path.relpath(script) if script.exists() else "azrestore"
    if name.startswith(".."):
        name = str(script)
    say(
        "The emulator, and the VMs in it, are gone now. Run the restore again with:\n"
        f"  {name} restore {plan} --emulator"
    )
    console.print(f"\n[bold green]demo done[/] in {time.monotonic() - started:.0f} s")


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m azrestore.cli.demo",
        description="Build two sample backups and restore them into a local Azure.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"run simulated Azure at time factor {QUICK_TIME_FACTOR:g} (for tests)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("demo-out"), help="where the images and plan go"
    )
    args = parser.parse_args(argv)
    return Options(out=args.out, quick=args.quick)


def exit_status(body: Callable[[], None]) -> int:
    """Run ``body``: 0, or 128 + the signal when interrupted (the demo says what it
    stopped), or the command line's error edge's line and exit code."""
    try:
        body()
    except KeyboardInterrupt:
        print("\ndemo: interrupted; everything it started is stopped", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated() else signal.SIGINT)
    except Exception as exc:
        return report_error(exc, prog="demo")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    become_subreaper()

    def run() -> None:
        with stopping_everything():
            demo(options)

    status = exit_status(run)
    if status:
        sys.exit(status)


if __name__ == "__main__":
    main()
