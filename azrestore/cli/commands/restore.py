"""``azrestore restore`` and ``azrestore plan example``: restore the VMs of a plan; the
rendering of a restore lives in :mod:`azrestore.cli.restore`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..text import error_line, print_json
from .common import JsonOption, proxy_settings, reporting, run


def plan_example() -> None:
    """Print a commented example restore plan (YAML)."""
    from ...restore.plan import example_plan

    print(example_plan(), end="")


def restore(
    ctx: typer.Context,
    plan: Annotated[Path, typer.Argument(help="The restore plan (YAML).", show_default=False)],
    use_emulator: Annotated[
        bool,
        typer.Option(
            "--emulator",
            help="Start a fresh local emulator, create in it the subnet, proxy and helpers"
            " the plan names, and restore into it (no subscription needed).",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Check the plan and the images and print the steps; touch nothing."
        ),
    ] = False,
    as_json: JsonOption = False,
    time_factor: Annotated[
        float,
        typer.Option(help="With --emulator: multiplies every simulated Azure duration."),
    ] = 0.05,
) -> None:
    """Restore the VMs of a plan into Azure.

    Uploads and prepares their disks, registers the VMs and powers them on. Exit 0 when
    every VM succeeded, 1 when any failed, 2 for a bad plan.
    """
    from ..restore import (
        RestoreView,
        dry_run_steps,
        report_json,
        report_table,
        resolve_plan_file,
        run_restore,
    )

    with reporting(ctx):
        if time_factor <= 0:
            raise typer.BadParameter("--time-factor must be positive")
        if dry_run:
            resolved = run(resolve_plan_file(plan, emulator=use_emulator))
            if as_json:
                print_json(
                    {"dry_run": True, **resolved.to_json(), "steps": dry_run_steps(resolved)}
                )
            else:
                for warning in resolved.warnings:
                    print(f"warning: {warning}")
                print("\n".join(dry_run_steps(resolved)))
            return
        with RestoreView(None if as_json else Console(stderr=True)) as view:
            report = run(
                run_restore(
                    plan,
                    emulator=use_emulator,
                    time_factor=time_factor,
                    config_override=None,
                    view=view,
                    proxy=proxy_settings(ctx),
                )
            )
    for failed in report.vms:
        if failed.status != "succeeded":
            error_line(f"{failed.name}: {failed.error}")
    if as_json:
        print(report_json(report))
    else:
        Console().print(report_table(report))
        for resource in report.left_in_azure:
            print(f"left in Azure: {resource}")
    raise typer.Exit(0 if report.succeeded else 1)
