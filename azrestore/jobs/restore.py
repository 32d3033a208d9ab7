"""The restore job: load and check a plan, then restore its VMs into the Azure that the
given Resource Manager settings name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import anyio.to_thread

from ..azure.arm import ArmSettings
from ..azure.controlplane import ControlPlane
from ..restore.outcome import RestoreObserver, RestoreReport
from ..restore.plan import ResolvedPlan, check_helpers, load_plan, resolve_plan
from ..restore.run import RestoreRun
from ..restore.settings import RestoreSettings
from ..transfer.config import TransferConfig


async def load_and_resolve(plan_path: Path, environ: Mapping[str, str]) -> ResolvedPlan:
    """Read the plan, check it and its images, and resolve it (the subscription is the
    plan's, else ``AZURE_SUBSCRIPTION_ID`` in ``environ``); touches nothing in Azure."""
    plan = await anyio.to_thread.run_sync(load_plan, plan_path)
    resolved = await resolve_plan(plan, environ=environ)
    check_helpers(resolved)
    return resolved


def plan_transfer_config(resolved: ResolvedPlan) -> TransferConfig:
    """The transfer settings the plan's ``transfer:`` section asks for."""
    transfer = resolved.plan.transfer
    return TransferConfig(
        concurrency=transfer.concurrency,
        chunk_size=transfer.chunk_size,
        max_bandwidth=transfer.max_bandwidth,
        checksum=transfer.checksum,  # type: ignore[arg-type]
    )


async def restore_resolved(
    resolved: ResolvedPlan,
    arm: ArmSettings,
    *,
    settings: RestoreSettings,
    config_override: TransferConfig | None = None,
    observer: RestoreObserver | None = None,
) -> RestoreReport:
    """Run a resolved plan against the Azure ``arm`` names (the plan's transfer settings
    unless ``config_override``)."""
    config = config_override or plan_transfer_config(resolved)
    async with ControlPlane(arm) as control:
        run = RestoreRun(resolved, control, config=config, settings=settings, observer=observer)
        return await run.run()


async def run_restore(
    plan_path: Path,
    arm: ArmSettings,
    *,
    environ: Mapping[str, str],
    settings: RestoreSettings,
    config_override: TransferConfig | None = None,
    observer: RestoreObserver | None = None,
) -> RestoreReport:
    """Resolve the plan at ``plan_path`` (``environ`` as for :func:`load_and_resolve`),
    then run it against the Azure ``arm`` names."""
    resolved = await load_and_resolve(plan_path, environ)
    return await restore_resolved(
        resolved, arm, settings=settings, config_override=config_override, observer=observer
    )
