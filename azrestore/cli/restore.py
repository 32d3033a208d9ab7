"""``azrestore restore PLAN``: the live view, the report, and the glue that reads the
command's credentials from the environment for the restore jobs (:mod:`azrestore.jobs`).

The live view is a table redrawn by rich ~4 times a second: a row per VM (its current
step) and a row per disk (bytes done and rate). The observer callbacks only store numbers.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..azure.arm import ArmSettings
from ..azure.proxy import ProxySettings
from ..formats.sizes import format_size
from ..jobs import restore as restore_job
from ..jobs.emulated import ScriptsChoice, emulator_environ, run_emulated_restore
from ..restore.outcome import RestoreReport
from ..restore.plan import ResolvedPlan
from ..restore.settings import RestoreSettings
from ..sources.locations import is_url
from ..transfer.config import TransferConfig
from ..transfer.progress import ProgressEvent
from .environment import CONNECTION_STRING_ENV, STORAGE_ACCOUNT_ENV, default_journal_dir

if TYPE_CHECKING:
    from ..emulator.storage.network import NetworkModel


@dataclass
class _DiskRow:
    done: int = 0
    total: int = 0
    sent: int = 0
    seconds: float = 0.0


class RestoreView:
    """The restore's live view (an observer of :class:`RestoreRun`)."""

    def __init__(self, console: Console | None) -> None:
        self.console = console
        self.steps: dict[str, str] = {}
        self.disks: dict[tuple[str, str], _DiskRow] = {}
        self._started = time.monotonic()
        self._live: Live | None = None
        #: the run's report once it ended (also when it was interrupted)
        self.report: RestoreReport | None = None

    def finished(self, report: RestoreReport) -> None:
        self.report = report

    def step(self, vm: str, step: str) -> None:
        self.steps[vm] = step
        if self._live is None and self.console is not None:
            self.console.print(f"{vm}: {step}")

    def disk_progress(self, vm: str, disk: str, event: ProgressEvent) -> None:
        row = self.disks.setdefault((vm, disk), _DiskRow())
        stats = event.stats
        row.total = stats.blob_size
        row.done = stats.bytes_uploaded + stats.bytes_skipped
        row.sent = stats.bytes_uploaded
        row.seconds = stats.seconds  # the rate of a finished disk stays what it was

    def __rich__(self) -> RenderableType:
        vms = Table(title=f"restore ({time.monotonic() - self._started:.0f} s)", expand=False)
        vms.add_column("VM")
        vms.add_column("step")
        for name, step in self.steps.items():
            style = "green" if step == "done" else "red" if step == "failed" else "yellow"
            vms.add_row(name, Text(step, style=style))
        disks = Table(expand=False)
        for column in ("VM", "disk", "done", "sent", "rate"):
            disks.add_column(column)
        for (vm, disk), row in self.disks.items():
            percent = 100 * row.done / row.total if row.total else 0.0
            rate = row.sent / max(row.seconds, 1e-3)
            disks.add_row(
                vm,
                disk if is_url(disk) else Path(disk).name,
                f"{percent:5.1f}%",
                format_size(row.sent),
                f"{format_size(rate)}/s",
            )
        return Group(vms, disks)

    def __enter__(self) -> RestoreView:
        if self.console is not None and self.console.is_terminal:
            self._live = Live(self, console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None


def dry_run_steps(resolved: ResolvedPlan) -> list[str]:
    """The steps a run would take, in words, touching nothing."""
    plan = resolved.plan
    lines: list[str] = []
    if plan.proxy is not None:
        lines.append(
            f"power on the proxy {plan.proxy.vm} (off after {plan.proxy.idle_timeout} s idle)"
        )
    for vm in resolved.vms:
        lines.append(f"{vm.name}: {vm.os_family}, generation {vm.generation}, size {vm.spec.size}")
        lines.append(f"  security: {vm.security.describe()} ({vm.security.reason})")
        for disk in vm.disks:
            where = "OS disk" if disk.lun is None else f"data disk LUN {disk.lun}"
            lines.append(
                f"  upload {disk.spec.path} ({format_size(disk.report.disk_size)},"
                f" {format_size(disk.report.allocated_bytes)} allocated) as {where}"
                f" {vm.resource_group}/{disk.name} ({disk.sku})"
            )
        if vm.helper:
            how = " (offline)" if vm.preparation == "windows-offline" else ""
            lines.append(
                f"  mount on the {vm.helper_family} helper {vm.helper}, prepare{how}, unmount"
                " (in a batch with other VMs)"
            )
        lines.append(f"  register the VM in {vm.subnet}, power it on, wait for the agent")
    for family in ("linux", "windows"):
        pool = plan.helpers.pool(family)
        if pool is not None and pool.create is not None:
            lines.insert(
                0,
                f"create {pool.create.create} {family} helper(s) ({pool.create.size}) for the"
                " run, delete them (with their NICs and OS disks) when their VMs are done",
            )
    lines.append("leave the proxy and helpers deallocated")
    return lines


async def resolve_plan_file(plan_path: Path, *, emulator: bool) -> ResolvedPlan:
    """The plan at ``plan_path``, resolved against the process environment, or against
    the emulator's subscription with ``--emulator``."""
    return await restore_job.load_and_resolve(
        plan_path, emulator_environ() if emulator else os.environ
    )


async def run_restore(
    plan_path: Path,
    *,
    emulator: bool,
    time_factor: float,
    config_override: TransferConfig | None,
    view: RestoreView,
    proxy: ProxySettings | None = None,
    journal_dir: Path | None = None,
    restart: bool = False,
    scripts: str = "auto",
    network: NetworkModel | None = None,
) -> RestoreReport:
    """Resolve the plan, then run it against the Azure the environment names, or against
    a fresh local emulator; through the forward proxies ``proxy`` names. Journals go in
    ``journal_dir``, else the default folder the environment names (a fresh emulator's
    runs keep none: nothing of theirs outlives them). ``scripts``: how the emulator's
    Linux helper answers the preparation scripts (run, record, auto); ``network``: the
    emulator's storage link and targets."""
    if emulator:
        return await run_emulated_restore(
            plan_path,
            time_factor=time_factor,
            config_override=config_override,
            observer=view,
            proxy=proxy,
            scripts=cast(ScriptsChoice, scripts),
            network=network,
            notice=lambda message: print(f"note: {message}", file=sys.stderr, flush=True),
        )
    settings = RestoreSettings(
        storage_connection_string=os.environ.get(CONNECTION_STRING_ENV) or None,
        storage_account_id=os.environ.get(STORAGE_ACCOUNT_ENV) or None,
        journal_dir=journal_dir if journal_dir is not None else default_journal_dir(os.environ),
        restart=restart,
    )
    return await restore_job.run_restore(
        plan_path,
        replace(ArmSettings.from_env(dict(os.environ)), proxy=proxy),
        environ=os.environ,
        settings=settings,
        config_override=config_override,
        observer=view,
    )


def report_table(report: RestoreReport) -> Table:
    table = Table(title=f"restore report ({report.seconds:.1f} s)")
    for column in ("VM", "status", "OS", "gen", "security", "uploaded", "VM id / error"):
        table.add_column(column)
    for vm in report.vms:
        uploaded = sum(d.bytes_uploaded for d in vm.disks)
        detail = vm.vm_id if vm.status == "succeeded" else (vm.error or "")
        style = "green" if vm.status == "succeeded" else "red"
        table.add_row(
            vm.name,
            Text(vm.status, style=style),
            vm.os,
            vm.generation,
            security_cell(vm.security),
            format_size(uploaded),
            detail or "",
        )
    lines = helper_lines(report)
    if lines:
        table.caption = "\n".join(lines)
    return table


def security_cell(security: Mapping[str, Any]) -> str:
    """``TL, SB on, vTPM on`` for Trusted Launch (secure boot, vTPM), else ``Standard``."""
    if security.get("security_type") != "TrustedLaunch":
        return "Standard" if security else ""
    on = {True: "on", False: "off"}
    return f"TL, SB {on[bool(security.get('secure_boot'))]}, vTPM {on[bool(security.get('vtpm'))]}"


def helper_lines(report: RestoreReport) -> list[str]:
    """What the run did with its helpers, in words: its preparation batches, and the
    helpers it created for itself and whether it deleted them."""
    lines = [
        f"batch on {batch['helper'].rsplit('/', 1)[-1]}: {', '.join(batch['vms'])}"
        for batch in report.batches
    ]
    for helper in report.created_helpers:
        name = str(helper["vm_id"]).rsplit("/", 1)[-1]
        what = f"helper {name} ({helper['family']}, {helper['size']}): created for the run"
        if helper["deleted"]:
            lines.append(f"{what}, deleted (with its NIC and OS disk)")
        else:
            lines.append(f"{what}, NOT deleted: {helper['error'] or 'unknown'}; delete it")
    return lines


def interrupted_summary(report: RestoreReport) -> str:
    """The error line of an interrupted run: what it leaves open, and how to go on."""
    open_disks = report.left_open()
    kept = [str(h["vm_id"]).rsplit("/", 1)[-1] for h in report.created_helpers if not h["deleted"]]
    if kept:
        # Helpers the run created and could not delete cost money: say so first.
        return (
            f"helper(s) created for the run and not deleted: {', '.join(kept)}; delete them."
            f" {interrupted_summary(replace(report, created_helpers=[]))}"
        )
    if not open_disks:
        return "run the same command again to continue"
    names = ", ".join(disk_id.rsplit("/", 1)[-1] for disk_id, _ in open_disks)
    return (
        f"{len(open_disks)} disk(s) left open for upload ({names}: write access not revoked,"
        " Azure refuses to revoke an incomplete upload); run the same command again to"
        " continue, or with --restart to upload them again"
    )


def report_json(report: RestoreReport) -> str:
    data: dict[str, Any] = report.to_json()
    return json.dumps(data, indent=2)
