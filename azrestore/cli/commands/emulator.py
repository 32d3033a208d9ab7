"""``azrestore emulator``: run a local Azure until Ctrl-C or SIGTERM."""

from __future__ import annotations

import json
import shlex
import signal
import sys
from typing import TYPE_CHECKING, Annotated, Literal, cast

import anyio
import typer

from .common import JsonOption, reporting, run
from .networkoptions import AccountTargetsOption, BlobTargetsOption, LinkOption, network_model

if TYPE_CHECKING:
    from ...emulator.storage.network import NetworkModel


def emulator(
    ctx: typer.Context,
    as_json: JsonOption = False,
    time_factor: Annotated[
        float,
        typer.Option(
            help="Multiplies every simulated Azure duration (0.01 for tests, 1 for real pace)."
        ),
    ] = 1.0,
    scripts: Annotated[
        str,
        typer.Option(
            metavar="run|record|auto",
            help="Linux helpers' Run Command scripts: run them for real as root in a sandbox"
            " over the VM's data disks (needs root and loop devices), record them (the disks"
            " are only marked prepared), or auto: run where this machine can.",
        ),
    ] = "auto",
    link: LinkOption = None,
    blob_targets: BlobTargetsOption = None,
    account_targets: AccountTargetsOption = None,
) -> None:
    """Run a local Azure until Ctrl-C or SIGTERM.

    It runs Azurite behind the strict storage gateway and the Resource Manager simulator,
    and prints where they are and the environment that points azrestore at them. Its
    Linux helpers run azrestore's preparation scripts for real where this machine can
    (root, loop devices; see --scripts), as `restore --emulator` does, so a plan restores
    into it the same way. --link, --blob-targets and --account-targets make its storage
    behave like Azure's over a real link: a round trip per request, and 503 ServerBusy
    beyond Azure's scalability targets.
    """
    with reporting(ctx):
        if time_factor <= 0:
            raise typer.BadParameter("--time-factor must be positive")
        if scripts not in ("run", "record", "auto"):
            raise typer.BadParameter("--scripts must be run, record or auto")
        mode = cast(Literal["run", "record", "auto"], scripts)
        network = network_model(link, blob_targets, account_targets)
        run(_serve_emulator(as_json, time_factor, mode, network))


async def _serve_emulator(
    as_json: bool,
    time_factor: float,
    scripts: Literal["run", "record", "auto"],
    network: NetworkModel | None,
) -> None:
    from ...emulator import Emulator
    from ...jobs.emulated import emulated_rules

    rules, reason = await emulated_rules(scripts)
    if reason is not None:
        print(f"Guest scripts are recorded, not run: {reason}", file=sys.stderr, flush=True)
    async with Emulator(
        time_factor=time_factor, run_command_rules=rules, scripts=scripts, network=network
    ) as local_azure:
        info = local_azure.info()
        if as_json:
            print(json.dumps(info), flush=True)
        else:
            print(f"Resource Manager: {info['arm_endpoint']}")
            print(f"Blob storage:     {info['blob_endpoint']}")
            print(f"CA bundle:        {info['ca_bundle']}")
            guest = info["scripts"]
            print(f"Linux scripts:    {'run for real' if guest['run'] else 'recorded'}")
            link_info = info["network"]
            print(f"Storage link:     {link_info['link']}")
            print(f"Blob targets:     {link_info['blob_targets']}")
            print(f"Account targets:  {link_info['account_targets']}")
            print("Point azrestore at it with:")
            for name, value in info["env"].items():
                print(f"  export {name}={shlex.quote(str(value))}")
            print("Running until Ctrl-C.", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
