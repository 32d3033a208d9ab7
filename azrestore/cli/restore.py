"""``azrestore restore PLAN`` and ``azrestore plan example``: the live view and the report.

The live view is a table redrawn by rich ~4 times a second: a row per VM (its current
step) and a row per disk (bytes done and rate). The observer callbacks only store numbers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..azure.arm import ArmSettings
from ..azure.controlplane import ControlPlane
from ..formats.sizes import format_size
from ..restore.engine import RestoreReport, RestoreRun, RestoreSettings
from ..restore.plan import ResolvedPlan, check_helpers, load_plan, resolve_plan
from ..transfer.config import TransferConfig
from ..transfer.progress import ProgressEvent

#: The marketplace images the emulator's helpers and proxy are created from.
_LINUX_IMAGE = {
    "publisher": "Canonical",
    "offer": "ubuntu-24_04-lts",
    "sku": "server",
    "version": "latest",
}
_WINDOWS_IMAGE = {
    "publisher": "MicrosoftWindowsServer",
    "offer": "WindowsServer",
    "sku": "2022-datacenter-azure-edition",
    "version": "latest",
}


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
                Path(disk).name,
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
        for disk in vm.disks:
            where = "OS disk" if disk.lun is None else f"data disk LUN {disk.lun}"
            lines.append(
                f"  upload {disk.spec.path} ({format_size(disk.report.disk_size)},"
                f" {format_size(disk.report.allocated_bytes)} allocated) as {where}"
                f" {vm.resource_group}/{disk.name} ({disk.sku})"
            )
        if vm.helper:
            lines.append(f"  mount on the {vm.os_family} helper {vm.helper}, prepare, unmount")
        lines.append(f"  register the VM in {vm.subnet}, power it on, wait for the agent")
    lines.append("leave the proxy and helpers deallocated")
    return lines


async def load_and_resolve(plan_path: Path, environ: dict[str, str] | None) -> ResolvedPlan:
    plan = await anyio.to_thread.run_sync(load_plan, plan_path)
    resolved = await resolve_plan(plan, environ=os.environ if environ is None else environ)
    check_helpers(resolved)
    return resolved


async def bootstrap_emulator(control: ControlPlane, resolved: ResolvedPlan) -> None:
    """Create in a fresh emulator what the plan expects to exist: the subnets, the proxy
    and the helper appliances (from marketplace images, as in Azure)."""
    plan = resolved.plan
    location = plan.target.location
    subnets = {vm.subnet for vm in resolved.vms}
    for subnet in sorted(subnets):
        await control.ensure_subnet(subnet, location=location)
    appliance_subnet = sorted(subnets)[0]
    appliances: list[tuple[str, dict[str, str], str]] = []
    if plan.proxy is not None:
        appliances.append((plan.proxy.vm, _LINUX_IMAGE, "Linux"))
    if plan.helpers.linux:
        appliances.append((plan.helpers.linux, _LINUX_IMAGE, "Linux"))
    if plan.helpers.windows:
        appliances.append((plan.helpers.windows, _WINDOWS_IMAGE, "Windows"))
    async with anyio.create_task_group() as tasks:
        for vm_id, image, os_type in appliances:
            tasks.start_soon(_appliance, control, vm_id, image, os_type, location, appliance_subnet)


async def _appliance(
    control: ControlPlane,
    vm_id: str,
    image: dict[str, str],
    os_type: str,
    location: str,
    subnet: str,
) -> None:
    if await control.get_vm(vm_id) is None:
        await control.create_appliance(
            vm_id,
            location=location,
            size="Standard_B2s",
            image=image,
            subnet_id=subnet,
            os_type=os_type,
        )
        # A new VM runs; the run starts helpers and the proxy when it needs them.
        await control.deallocate_vm(vm_id)


async def run_restore(
    plan_path: Path,
    *,
    emulator: bool,
    time_factor: float,
    config_override: TransferConfig | None,
    view: RestoreView,
) -> RestoreReport:
    """Resolve the plan, then run it against the Azure the environment names, or against
    a fresh local emulator."""
    if not emulator:
        resolved = await load_and_resolve(plan_path, None)
        settings = ArmSettings.from_env()
        return await _run(resolved, settings, config_override, view, RestoreSettings())
    from ..emulator import Emulator

    # The plan and images are checked before the emulator starts.
    resolved = await load_and_resolve(plan_path, {"AZURE_SUBSCRIPTION_ID": EMULATOR_SUBSCRIPTION})
    async with Emulator(
        time_factor=time_factor, run_command_rules=emulated_preparation()
    ) as local_azure:
        info = local_azure.info()
        env: dict[str, str] = {k: str(v) for k, v in info["env"].items()}
        settings = ArmSettings.from_env(env)
        if resolved.plan.target.disks == "page-blob":
            # The emulator's storage account stands in for the plan's.
            resolved = await _emulated_storage_account(local_azure, resolved, info)
        async with ControlPlane(settings) as control:
            await bootstrap_emulator(control, resolved)
        poll = max(0.05, 10 * time_factor)
        run_settings = RestoreSettings(
            agent_timeout=max(60.0, 1200 * time_factor), agent_poll_interval=poll
        )
        return await _run(resolved, settings, config_override, view, run_settings)


EMULATOR_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


async def _emulated_storage_account(
    local_azure: Any, resolved: ResolvedPlan, info: dict[str, Any]
) -> ResolvedPlan:
    from azure.storage.blob.aio import BlobServiceClient

    target = resolved.plan.target.model_copy(
        update={
            "storage_account": info["blob_endpoint"],
            "storage_account_id": info["storage_account_id"],
        }
    )
    os.environ["AZURE_STORAGE_CONNECTION_STRING"] = info["storage_connection_string"]
    async with BlobServiceClient.from_connection_string(
        local_azure.azurite.connection_string
    ) as service:
        container = service.get_container_client(target.container)
        if not await container.exists():
            await container.create_container()
    plan = resolved.plan.model_copy(update={"target": target})
    return dataclasses.replace(resolved, plan=plan)


def emulated_preparation() -> list[Any]:
    """Run Command rules that answer azrestore's preparation scripts in the emulator as a
    helper that ran them would: a summary and the ``AZRESTORE-RESULT`` line. (The
    simulator runs no script; it marks the attached disks prepared.)"""
    from ..emulator import RunCommandOutcome, RunCommandRule

    result = 'AZRESTORE-RESULT {"ok": true, "emulated": true}'
    return [
        RunCommandRule(
            script=r"AZRESTORE-RESULT",
            outcome=RunCommandOutcome(stdout=f"prepared by the emulated helper\n{result}\n"),
        )
    ]


async def _run(
    resolved: ResolvedPlan,
    settings: ArmSettings,
    config_override: TransferConfig | None,
    view: RestoreView,
    run_settings: RestoreSettings,
) -> RestoreReport:
    transfer = resolved.plan.transfer
    config = config_override or TransferConfig(
        concurrency=transfer.concurrency,
        chunk_size=transfer.chunk_size,
        max_bandwidth=transfer.max_bandwidth,
        checksum=transfer.checksum,  # type: ignore[arg-type]
    )
    async with ControlPlane(settings) as control:
        run = RestoreRun(resolved, control, config=config, settings=run_settings, observer=view)
        return await run.run()


def report_table(report: RestoreReport) -> Table:
    table = Table(title=f"restore report ({report.seconds:.1f} s)")
    for column in ("VM", "status", "OS", "gen", "uploaded", "VM id / error"):
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
            format_size(uploaded),
            detail or "",
        )
    return table


def report_json(report: RestoreReport) -> str:
    data: dict[str, Any] = report.to_json()
    return json.dumps(data, indent=2)
