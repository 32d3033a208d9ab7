"""The restore job against a fresh local emulator: start it, create in it what the plan
expects to exist (subnets, proxy, helpers), have its helpers run the preparation scripts
(for real on the Linux helper where the machine can, else answered as a helper would),
and run the plan; the emulator is gone when the job returns."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ..azure.arm import ArmSettings
from ..azure.controlplane import ControlPlane
from ..restore.outcome import RestoreObserver, RestoreReport
from ..restore.plan import ResolvedPlan
from ..restore.settings import RestoreSettings
from ..transfer.config import TransferConfig
from .restore import load_and_resolve, restore_resolved

if TYPE_CHECKING:
    from ..azure.proxy import ProxySettings
    from ..emulator import Emulator, RunCommandOutcome, RunCommandRule
    from ..emulator.storage import NetworkModel

_log = logging.getLogger("azrestore.emulator")

#: How the emulator answers Linux scripts: see :class:`azrestore.emulator.Emulator`.
ScriptsChoice = Literal["run", "record", "auto"]

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


def emulator_environ() -> dict[str, str]:
    """What a plan without a subscription resolves against in the emulator: its
    subscription."""
    from ..emulator.arm import DEFAULT_SUBSCRIPTION

    return {"AZURE_SUBSCRIPTION_ID": DEFAULT_SUBSCRIPTION}


async def run_emulated_restore(
    plan_path: Path,
    *,
    time_factor: float,
    config_override: TransferConfig | None = None,
    observer: RestoreObserver | None = None,
    proxy: ProxySettings | None = None,
    scripts: ScriptsChoice = "auto",
    notice: Callable[[str], None] | None = None,
    helper_size: str = "Standard_B2s",
    network: NetworkModel | None = None,
) -> RestoreReport:
    """Resolve the plan, then run it against a fresh local emulator whose simulated
    durations are multiplied by ``time_factor``, through the forward proxies ``proxy``
    names (the emulator's setup itself is not proxied). The helpers the plan names are
    created of ``helper_size``.

    ``scripts``: the Linux helper runs the preparation scripts for real (``run``; the
    restored disks must then be real), answers them as a helper would (``record``), or
    runs them where the machine can (``auto``). When ``auto`` cannot, ``notice`` (else a
    logged warning) hears why, once. ``network``: the emulator's storage link and
    scalability targets (loopback and none by default)."""
    from ..emulator import Emulator

    # The plan and images are checked before the emulator starts.
    resolved = await load_and_resolve(plan_path, emulator_environ())
    rules, reason = await emulated_rules(scripts)
    if reason is not None:
        message = f"the emulator's helpers record the preparation scripts: {reason}"
        if notice is not None:
            notice(message)
        else:
            _log.warning("%s", message)
    async with Emulator(
        time_factor=time_factor, run_command_rules=rules, scripts=scripts, network=network
    ) as local_azure:
        info = local_azure.info()
        arm = ArmSettings.from_env({k: str(v) for k, v in info["env"].items()})
        arm = dataclasses.replace(arm, proxy=proxy)
        if resolved.plan.target.disks == "page-blob":
            # The emulator's storage account stands in for the plan's.
            resolved = await _emulated_storage_account(local_azure, resolved, info)
        async with ControlPlane(arm) as control:
            await bootstrap_emulator(control, resolved, helper_size=helper_size)
        settings = RestoreSettings(
            # 90 simulated seconds for more VMs to join a helper's batch (the default)
            batch_window=90 * time_factor,
            batch_max_wait=360 * time_factor,
            agent_timeout=max(60.0, 1200 * time_factor),
            agent_poll_interval=max(0.05, 10 * time_factor),
            storage_connection_string=info["storage_connection_string"],
        )
        return await restore_resolved(
            resolved, arm, settings=settings, config_override=config_override, observer=observer
        )


async def _emulated_storage_account(
    local_azure: Emulator, resolved: ResolvedPlan, info: dict[str, Any]
) -> ResolvedPlan:
    from azure.storage.blob.aio import BlobServiceClient

    target = resolved.plan.target.model_copy(
        update={
            "storage_account": info["blob_endpoint"],
            "storage_account_id": info["storage_account_id"],
        }
    )
    async with BlobServiceClient.from_connection_string(
        local_azure.azurite.connection_string
    ) as service:
        container = service.get_container_client(target.container)
        if not await container.exists():
            await container.create_container()
    plan = resolved.plan.model_copy(update={"target": target})
    return dataclasses.replace(resolved, plan=plan)


async def bootstrap_emulator(
    control: ControlPlane, resolved: ResolvedPlan, *, helper_size: str = "Standard_B2s"
) -> None:
    """Create in a fresh emulator what the plan expects to exist: the subnets, the proxy
    and the helper appliances the plan names (from marketplace images, as in Azure; of
    ``helper_size``). Helpers the plan asks the run to create are left to the run."""
    plan = resolved.plan
    location = plan.target.location
    subnets = {vm.subnet for vm in resolved.vms}
    for family in ("linux", "windows"):
        pool = plan.helpers.pool(family)
        if pool is not None and pool.create is not None and pool.create.subnet:
            subnets.add(pool.create.subnet)
    for subnet in sorted(subnets):
        await control.ensure_subnet(subnet, location=location)
    appliance_subnet = sorted(subnets)[0]
    appliances: list[tuple[str, dict[str, str], str]] = []
    if plan.proxy is not None:
        appliances.append((plan.proxy.vm, _LINUX_IMAGE, "Linux"))
    for family, _, helper in plan.helpers.vm_ids():
        image, os_type = (
            (_LINUX_IMAGE, "Linux") if family == "linux" else (_WINDOWS_IMAGE, "Windows")
        )
        appliances.append((helper, image, os_type))
    async with anyio.create_task_group() as tasks:
        for vm_id, image, os_type in appliances:
            size = (
                "Standard_B2s" if plan.proxy is not None and vm_id == plan.proxy.vm else helper_size
            )
            tasks.start_soon(
                _appliance, control, vm_id, image, os_type, location, appliance_subnet, size
            )


async def _appliance(
    control: ControlPlane,
    vm_id: str,
    image: dict[str, str],
    os_type: str,
    location: str,
    subnet: str,
    size: str,
) -> None:
    if await control.get_vm(vm_id) is None:
        await control.create_appliance(
            vm_id,
            location=location,
            size=size,
            image=image,
            subnet_id=subnet,
            os_type=os_type,
        )
        # A new VM runs; the run starts helpers and the proxy when it needs them.
        await control.deallocate_vm(vm_id)


async def emulated_rules(scripts: ScriptsChoice) -> tuple[list[RunCommandRule], str | None]:
    """The Run Command rules for an emulator whose scripts mode is ``scripts``, and why
    Linux scripts are not run for real when ``auto`` finds they cannot be. Where they run,
    only the Windows helper's PowerShell is answered by a rule (it cannot run here)."""
    import anyio.to_thread

    from ..emulator.guest.availability import sandbox_unavailable

    if scripts == "record":
        return emulated_preparation(), None
    reason = await anyio.to_thread.run_sync(sandbox_unavailable)
    if reason is not None:
        if scripts == "run":
            from ..errors import InputError

            raise InputError(f"scripts 'run': guest scripts cannot run here: {reason}")
        return emulated_preparation(), reason
    return emulated_preparation(command_id="RunPowerShellScript"), None


def emulated_preparation(*, command_id: str | None = None) -> list[RunCommandRule]:
    """Run Command rules that answer azrestore's preparation scripts in the emulator as a
    helper that ran them would: a summary and the ``AZRESTORE-RESULT`` line, or for a
    batch its ``AZRESTORE-BATCH`` line, every job prepared (only for ``command_id`` when
    given). (The simulator runs no script; it marks the attached disks prepared.)"""
    from ..emulator import RunCommandOutcome, RunCommandRule

    result = 'AZRESTORE-RESULT {"ok": true, "emulated": true}'
    return [
        RunCommandRule(
            script=r"AZRESTORE-BATCH",
            command_id=command_id,
            handler=lambda invocation: emulated_batch_outcome(invocation.script),
        ),
        RunCommandRule(
            script=r"AZRESTORE-RESULT",
            command_id=command_id,
            outcome=RunCommandOutcome(stdout=f"prepared by the emulated helper\n{result}\n"),
        ),
    ]


def emulated_batch_outcome(
    script: Sequence[str], failed: Mapping[int, tuple[str, str]] | None = None
) -> RunCommandOutcome:
    """What a helper prints for a batch script: every job prepared (one change), but the
    jobs of the OS-disk LUNs in ``failed``, which fail with ``(error, stderr tail)``."""
    from ..emulator import RunCommandOutcome
    from ..restore.batchscript import BATCH_PREFIX, batch_luns

    jobs: list[list[object]] = []
    for lun in batch_luns(script):
        if failed and lun in failed:
            jobs.append([0, 0, 0, *failed[lun]])
        else:
            jobs.append([1, 1, 0])
    summary = json.dumps({"v": 1, "jobs": jobs}, separators=(",", ":"))
    return RunCommandOutcome(stdout=f"prepared by the emulated helper\n{BATCH_PREFIX}{summary}\n")
