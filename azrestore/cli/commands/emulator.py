"""``azrestore emulator``: run a local Azure until Ctrl-C or SIGTERM."""

from __future__ import annotations

import json
import shlex
import signal
from typing import Annotated

import anyio
import typer

from .common import JsonOption, reporting, run


def emulator(
    ctx: typer.Context,
    as_json: JsonOption = False,
    time_factor: Annotated[
        float,
        typer.Option(
            help="Multiplies every simulated Azure duration (0.01 for tests, 1 for real pace)."
        ),
    ] = 1.0,
) -> None:
    """Run a local Azure until Ctrl-C or SIGTERM.

    It runs Azurite behind the strict storage gateway and the Resource Manager simulator,
    and prints where they are and the environment that points azrestore at them. Its
    helpers answer azrestore's preparation scripts as `restore --emulator` does, so a plan
    restores into it the same way.
    """
    with reporting(ctx):
        if time_factor <= 0:
            raise typer.BadParameter("--time-factor must be positive")
        run(_serve_emulator(as_json, time_factor))


async def _serve_emulator(as_json: bool, time_factor: float) -> None:
    from ...emulator import Emulator
    from ...jobs.emulated import emulated_preparation

    async with Emulator(
        time_factor=time_factor, run_command_rules=emulated_preparation()
    ) as local_azure:
        info = local_azure.info()
        if as_json:
            print(json.dumps(info), flush=True)
        else:
            print(f"Resource Manager: {info['arm_endpoint']}")
            print(f"Blob storage:     {info['blob_endpoint']}")
            print(f"CA bundle:        {info['ca_bundle']}")
            print("Point azrestore at it with:")
            for name, value in info["env"].items():
                print(f"  export {name}={shlex.quote(str(value))}")
            print("Running until Ctrl-C.", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
