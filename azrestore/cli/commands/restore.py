"""``azrestore restore`` and ``azrestore plan example``: restore the VMs of a plan; the
rendering of a restore lives in :mod:`azrestore.cli.restore`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ..text import error_line, print_json
from .common import JsonOption, proxy_settings, reporting, run, terminate_as_interrupt
from .networkoptions import AccountTargetsOption, BlobTargetsOption, LinkOption, network_model

if TYPE_CHECKING:
    from ...restore.outcome import RestoreReport
    from ..restore import RestoreView


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
    emulator_scripts: Annotated[
        str,
        typer.Option(
            "--emulator-scripts",
            metavar="run|record|auto",
            help="With --emulator: the Linux helper runs the preparation scripts for real"
            " (needs root and loop devices; the images must be real disks), records them,"
            " or auto: runs them where this machine can.",
        ),
    ] = "auto",
    journal_dir: Annotated[
        Path | None,
        typer.Option(
            "--journal-dir",
            metavar="DIR",
            help="Where the disks' resume journals live (default: journals/ in"
            " $AZRESTORE_STATE_DIR, else in $XDG_STATE_HOME/azrestore or"
            " ~/.local/state/azrestore).",
            show_default=False,
        ),
    ] = None,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            help="Delete the disks an interrupted run left open for upload and upload them"
            " again, instead of continuing them.",
        ),
    ] = False,
    link: LinkOption = None,
    blob_targets: BlobTargetsOption = None,
    account_targets: AccountTargetsOption = None,
) -> None:
    """Restore the VMs of a plan into Azure.

    Uploads and prepares their disks, registers the VMs and powers them on. Run again
    after an interruption, it continues each VM from the step it reached. Exit 0 when
    every VM succeeded, 1 when any failed, 2 for a bad plan, 130 when interrupted.
    """
    with reporting(ctx):
        if time_factor <= 0:
            raise typer.BadParameter("--time-factor must be positive")
        if emulator_scripts not in ("run", "record", "auto"):
            raise typer.BadParameter("--emulator-scripts must be run, record or auto")
        network = network_model(link, blob_targets, account_targets)
        if network is not None and not use_emulator:
            raise typer.BadParameter("--link, --blob-targets and --account-targets need --emulator")
        if dry_run:
            from ..restore import dry_run_steps, resolve_plan_file

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
        view: RestoreView | None = None
        try:
            from ..restore import RestoreView, interrupted_summary, run_restore

            view = RestoreView(None if as_json else Console(stderr=True))
            with view, terminate_as_interrupt():
                report = run(
                    run_restore(
                        plan,
                        emulator=use_emulator,
                        time_factor=time_factor,
                        config_override=None,
                        view=view,
                        proxy=proxy_settings(ctx),
                        journal_dir=journal_dir,
                        restart=restart,
                        scripts=emulator_scripts,
                        network=network,
                    )
                )
        except KeyboardInterrupt:
            if view is None or view.report is None:  # stopped before any VM's began
                if as_json:
                    print_json(
                        {"interrupted": True, "vms": [], "left_in_azure": [], "left_open": []}
                    )
                raise
            # The report of the run stopped midway, then the one error line (exit 130).
            _print_report(view.report, as_json)
            raise KeyboardInterrupt(interrupted_summary(view.report)) from None
    for failed in report.vms:
        if failed.status != "succeeded":
            error_line(f"{failed.name}: {failed.error}")
    _print_report(report, as_json)
    raise typer.Exit(0 if report.succeeded else 1)


def _print_report(report: RestoreReport, as_json: bool) -> None:
    from ..restore import report_json, report_table

    if as_json:
        print(report_json(report))
        return
    Console().print(report_table(report))
    for resource in report.left_in_azure:
        print(f"left in Azure: {resource}")
    for disk_id, why in report.left_open():
        print(f"left open for upload: {disk_id}: {why}")
