"""Resolving a plan: inspect every image (a few at a time, each with its disk's
``format``, else the one found from it), decide each VM's OS family and generation from
its OS disk (:mod:`~azrestore.restore.plan.decide`), then check what needs those: Azure's
size rules (an OS disk over 2 TiB needs V2, an OS disk is at most 4 TiB, a managed disk
is at least 20 MiB and at most 32 TiB, a page blob at most 8 TiB) and the helpers."""

from __future__ import annotations

from collections.abc import Mapping

import anyio

from ...azure.arm import SUBSCRIPTION_ENV
from ...errors import InputError
from ...formats.limits import (
    MAX_GEN1_OS_DISK,
    MAX_MANAGED_DISK,
    MAX_OS_DISK,
    MIN_MANAGED_DISK,
    page_blob_problem,
)
from ...formats.os_disk import os_disk_kind
from ...formats.sizes import format_size
from ...sources.locations import file_key
from ...sources.report import ImageReport, inspect_image
from .decide import decide_family, decide_generation
from .document import RestorePlan, helper_family, missing_helper, subscription_problems
from .fields import OsFamily
from .ids import GUID
from .problems import Loc, PlanError, format_loc
from .resolved import ResolvedDisk, ResolvedPlan, ResolvedVm
from .schema import DiskSpec, VmSpec
from .security import decide_security

__all__ = [
    "MAX_GEN1_OS_DISK",
    "MAX_MANAGED_DISK",
    "MAX_OS_DISK",
    "MIN_MANAGED_DISK",
    "check_helpers",
    "resolve_plan",
]

#: Images inspected at once by :func:`resolve_plan`.
INSPECT_CONCURRENCY = 8


def check_helpers(resolved: ResolvedPlan) -> None:
    """The second stage of the helper check: with every OS family known, each family
    with a VM to prepare needs its helper. Raises :class:`PlanError`."""
    plan = resolved.plan
    problems = [
        plan.problem(*missing_helper(vm.os_family, vm.index, vm.name))
        for vm in resolved.vms
        if vm.spec.prepare and helper_family(plan, vm.os_family) is None
    ]
    if problems:
        raise PlanError(list(dict.fromkeys(problems)))


async def resolve_plan(plan: RestorePlan, *, environ: Mapping[str, str]) -> ResolvedPlan:
    """Inspect every image of the plan and decide each VM's OS family and generation.

    The subscription is the plan's, else ``AZURE_SUBSCRIPTION_ID`` from ``environ`` (the
    command line passes the process environment). Raises :class:`PlanError` listing every
    problem: unusable images (missing, empty, not raw), undecidable or contradictory OS
    family or generation, Azure's size limits, and missing helpers.
    """
    problems: list[str] = []
    subscription = _subscription(plan, environ, problems)
    if subscription and plan.target.subscription is None:
        problems += [
            plan.problem(loc, msg) for loc, msg in subscription_problems(plan, subscription)
        ]
    reports = await _inspect_all(plan, problems)
    problems += await _same_files(plan, reports)
    warnings: list[str] = []
    vms = []
    for index, vm in enumerate(plan.vms):
        resolved = _resolve_vm(plan, index, vm, reports, problems, warnings)
        if resolved is not None:
            vms.append(resolved)
    if problems:
        raise PlanError(problems)
    result = ResolvedPlan(plan, subscription or "", tuple(vms), tuple(warnings))
    check_helpers(result)
    return result


def _subscription(plan: RestorePlan, environ: Mapping[str, str], problems: list[str]) -> str | None:
    if plan.target.subscription is not None:
        return plan.target.subscription
    value = environ.get(SUBSCRIPTION_ENV, "").strip()
    if not value:
        problems.append(
            plan.problem(("target", "subscription"), f"not set, and neither is {SUBSCRIPTION_ENV}")
        )
        return None
    if not GUID.match(value):
        problems.append(
            plan.problem(
                ("target", "subscription"),
                f"not set, and {SUBSCRIPTION_ENV}={value!r} is not a subscription id",
            )
        )
        return None
    return value


async def _inspect_all(plan: RestorePlan, problems: list[str]) -> dict[Loc, ImageReport]:
    """Inspect the images a few at a time; an unusable image becomes a problem naming
    its plan field (the InputError already names the path)."""
    reports: dict[Loc, ImageReport] = {}
    failures: dict[Loc, str] = {}
    limiter = anyio.CapacityLimiter(INSPECT_CONCURRENCY)

    async def inspect(loc: Loc, path: str, image_format: str | None) -> None:
        async with limiter:
            try:
                reports[loc] = await inspect_image(path, image_format=image_format)
            except InputError as exc:
                failures[loc] = str(exc)

    async with anyio.create_task_group() as group:
        for v, vm in enumerate(plan.vms):
            for d, disk in enumerate(vm.disks):
                loc: Loc = ("vms", v, "disks", d, "path")
                group.start_soon(inspect, loc, disk.path, disk.format)
    problems += [plan.problem(loc, failures[loc]) for loc in sorted(failures, key=_loc_key)]
    return reports


async def _same_files(plan: RestorePlan, reports: Mapping[Loc, ImageReport]) -> list[str]:
    """The disks whose image is one already used by another disk of the plan through
    another spelling (a symlink, a hard link, another node of one block device): the same
    path twice is refused when the plan is read (an NBD URL too: it is no file)."""
    first: dict[tuple[int, ...], Loc] = {}
    problems = []
    for loc in sorted(reports, key=_loc_key):
        path = str(reports[loc].path)
        key = await anyio.to_thread.run_sync(file_key, path)
        if key is None:
            continue  # a URL, or gone since it was inspected: the upload will say so
        other = first.setdefault(key, loc)
        if other != loc:
            problems.append(
                plan.problem(
                    loc,
                    f"{path} is the same image as {reports[other].path}, already used by"
                    f" {format_loc(other[:-1])} (a link to it, or another name of it)",
                )
            )
    return problems


def _loc_key(loc: Loc) -> tuple[str, ...]:
    return tuple(f"{part:08d}" if isinstance(part, int) else part for part in loc)


def _resolve_vm(
    plan: RestorePlan,
    index: int,
    vm: VmSpec,
    reports: Mapping[Loc, ImageReport],
    problems: list[str],
    warnings: list[str],
) -> ResolvedVm | None:
    loc: Loc = ("vms", index)
    os_index = next(i for i, disk in enumerate(vm.disks) if disk.role == "os")
    os_report = reports.get((*loc, "disks", os_index, "path"))
    before = len(problems)
    disks: list[ResolvedDisk] = []
    for d, spec in enumerate(vm.disks):
        report = reports.get((*loc, "disks", d, "path"))
        if report is None:
            continue
        _check_size(plan, (*loc, "disks", d), spec, report, problems)
        disks.append(
            ResolvedDisk(
                spec=spec,
                report=report,
                name=spec.name or _disk_name(vm.name, spec),
                sku=spec.sku or vm.disk_sku or plan.target.disk_sku,
                lun=spec.lun if spec.role == "data" else None,
            )
        )
    if os_report is None:
        return None
    disk_loc = (*loc, "disks", os_index)
    if os_report.layout.scheme == "none":
        found = os_report.layout.filesystem
        problems.append(
            plan.problem(
                (*disk_loc, "role"),
                f"{os_report.path} has no partition table"
                + (f" (a whole-disk {found} file system)" if found else "")
                + ": it cannot boot as an OS disk (use role: data)",
            )
        )
        return None
    kind = os_disk_kind(os_report.layout)
    family = decide_family(plan, loc, vm, os_report, kind, problems, warnings)
    generation = decide_generation(plan, loc, vm, os_report, kind, problems, warnings)
    if generation == "V1" and os_report.virtual_size > MAX_GEN1_OS_DISK:
        problems.append(
            plan.problem(
                (*loc, "generation"),
                f"{os_report.path} is {format_size(os_report.virtual_size)}: an OS disk over"
                " 2 TiB needs generation V2 (UEFI), and this one boots with BIOS",
            )
        )
    warnings += [f"{plan.source}: {format_loc(disk_loc)}: {w}" for w in os_report.layout.warnings]
    if family is None or generation is None or len(problems) > before:
        return None
    security = decide_security(plan, loc, vm, generation, os_report.boot_chain, problems)
    if vm.guest_state is not None:
        problems.append(
            plan.problem(
                (*loc, "guest_state"),
                f"VM {vm.name}: carrying a VM guest state is not implemented yet;"
                " leave guest_state out (the vTPM then starts empty)",
            )
        )
    if security is None or len(problems) > before:
        return None
    return ResolvedVm(
        index=index,
        spec=vm,
        os_family=family,
        generation=generation,
        resource_group=vm.resource_group or plan.target.resource_group,
        subnet=vm.subnet or plan.target.subnet or "",
        tags={**plan.target.tags, **vm.tags},
        disks=tuple(disks),
        helper=_helper(plan, family) if vm.prepare else None,
        helper_family=_family(helper_family(plan, family)) if vm.prepare else None,
        security=security,
    )


def _family(value: str | None) -> OsFamily | None:
    return "linux" if value == "linux" else "windows" if value == "windows" else None


def _helper(plan: RestorePlan, family: str) -> str | None:
    """The helper a VM's disks are prepared on, in words: its VM id when the family has
    one, else what the family's helpers are."""
    chosen = helper_family(plan, family)
    pool = plan.helpers.pool(chosen) if chosen else None
    if pool is None:
        return None
    return pool.vm_ids[0] if len(pool.vm_ids) == 1 else pool.describe()


def _disk_name(vm: str, spec: DiskSpec) -> str:
    return f"{vm}-osdisk" if spec.role == "os" else f"{vm}-data-lun{spec.lun}"


def _check_size(
    plan: RestorePlan, loc: Loc, spec: DiskSpec, report: ImageReport, problems: list[str]
) -> None:
    size = report.virtual_size
    shown = f"{report.path} is {format_size(size)}"
    if spec.role == "os" and size > MAX_OS_DISK:
        problems.append(plan.problem((*loc, "path"), f"{shown}: an OS disk is at most 4 TiB"))
    if plan.target.disks == "managed":
        if size < MIN_MANAGED_DISK:
            problems.append(
                plan.problem((*loc, "path"), f"{shown}: a managed disk is at least 20 MiB")
            )
        elif size > MAX_MANAGED_DISK:
            problems.append(
                plan.problem(
                    (*loc, "path"), f"{shown}: a managed disk is at most 32 TiB (32,767 GiB)"
                )
            )
    else:
        problem = page_blob_problem(report.disk_size)
        if problem is not None:
            problems.append(plan.problem((*loc, "path"), f"{report.path}: {problem}"))
