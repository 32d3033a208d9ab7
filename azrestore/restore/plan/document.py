"""The whole restore plan (:class:`RestorePlan`) and the checks that span its sections:
names, paths, LUNs and disk names used twice, an OS disk per VM, a helper per family to
prepare, and everything in the target's subscription."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field, PrivateAttr, model_validator

from .fields import DATA_ONLY_SKUS, MAX_TAGS
from .ids import SUBNET_TYPE, VM_TYPE, ResourceKind, parse_resource_id
from .problems import CrossFieldProblems, Loc, format_loc, problem_line
from .schema import Helpers, PlanModel, Proxy, Target, TransferSettings, VmSpec


class RestorePlan(PlanModel):
    """A validated plan. Build one with :func:`~azrestore.restore.plan.load_plan` (or
    :func:`~azrestore.restore.plan.parse_plan`)."""

    version: Literal[1] = 1
    target: Target
    proxy: Proxy | None = None
    helpers: Helpers = Helpers()
    transfer: TransferSettings = TransferSettings()
    vms: list[VmSpec] = Field(min_length=1)

    _source: str = PrivateAttr("plan")
    _lines: dict[Loc, int] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        """The plan's name in messages (the path it was loaded from)."""
        return self._source

    @model_validator(mode="after")
    def _cross_checks(self) -> RestorePlan:
        problems = _check_plan(self)
        if problems:
            raise CrossFieldProblems(problems)
        return self

    def locate(self, source: str, lines: dict[Loc, int]) -> None:
        """Name the file the plan was read from, and each field's line, for messages."""
        self._source = source
        self._lines = lines

    def problem(self, loc: Loc, message: str) -> str:
        """One line of a :class:`~azrestore.restore.plan.PlanError`:
        ``plan.yaml: loc: message (line N)``."""
        return problem_line(self._source, loc, message, self._lines)


def _check_plan(plan: RestorePlan) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    target = plan.target
    if target.disks == "page-blob" and target.storage_account is None:
        problems.append((("target", "storage_account"), "required with disks: page-blob"))
    if target.disks == "managed":
        problems.extend(
            (("target", key), "only used with disks: page-blob")
            for key in ("storage_account", "container")
            if key in target.model_fields_set
        )
    if target.subscription is not None:
        problems.extend(subscription_problems(plan, target.subscription))

    names: dict[str, int] = {}
    paths: dict[str, Loc] = {}
    disk_names: dict[tuple[str, str], Loc] = {}
    for index, vm in enumerate(plan.vms):
        loc: Loc = ("vms", index)
        first = names.setdefault(vm.name.lower(), index)
        if first != index:
            problems.append(((*loc, "name"), f"{vm.name!r} is already the name of vms[{first}]"))
        if vm.subnet is None and target.subnet is None:
            problems.append(((*loc, "subnet"), "required (there is no target.subnet)"))
        if not vm.power_on and vm.wait_for_agent and "wait_for_agent" in vm.model_fields_set:
            problems.append(((*loc, "wait_for_agent"), "needs power_on: true"))
        if len(target.tags.keys() | vm.tags.keys()) > MAX_TAGS:
            problems.append(((*loc, "tags"), f"more than {MAX_TAGS} with target.tags"))
        if vm.prepare and vm.os != "auto" and helper_family(plan, vm.os) is None:
            problems.append(missing_helper(vm.os, index, vm.name))
        problems.extend(_check_disks(plan, vm, loc, paths, disk_names))
    return problems


def _check_disks(
    plan: RestorePlan,
    vm: VmSpec,
    vm_loc: Loc,
    paths: dict[str, Loc],
    disk_names: dict[tuple[str, str], Loc],
) -> Iterator[tuple[Loc, str]]:
    os_disk: Loc | None = None
    luns: dict[int, Loc] = {}
    group = (vm.resource_group or plan.target.resource_group).lower()
    for index, disk in enumerate(vm.disks):
        loc = (*vm_loc, "disks", index)
        if disk.role == "os":
            if os_disk is not None:
                yield (*loc, "role"), f"a second OS disk ({format_loc(os_disk)} is one)"
            os_disk = os_disk or loc
            if disk.lun is not None:
                yield (*loc, "lun"), "an OS disk has no LUN (leave it out)"
            sku = disk.sku or vm.disk_sku or plan.target.disk_sku
            if sku in DATA_ONLY_SKUS:
                yield (*loc, "sku"), f"{sku} cannot hold an OS disk"
        elif disk.lun is None:
            yield (*loc, "lun"), "required for a data disk"
        else:
            other = luns.setdefault(disk.lun, loc)
            if other != loc:
                yield (*loc, "lun"), f"LUN {disk.lun} is already used by {format_loc(other)}"
        other = paths.setdefault(disk.path, loc)
        if other != loc:
            yield (*loc, "path"), f"{disk.path} is already used by {format_loc(other)}"
        if disk.name is not None:
            other = disk_names.setdefault((group, disk.name.lower()), loc)
            if other != loc:
                yield (*loc, "name"), f"{disk.name!r} is already used by {format_loc(other)}"
    if os_disk is None:
        yield (*vm_loc, "disks"), "no OS disk (give one disk role: os)"


def helper_family(plan: RestorePlan, family: str) -> str | None:
    """Which family's helpers prepare a VM of ``family``: its own; a Windows VM without
    Windows helpers is prepared offline on the Linux ones; None when there is neither."""
    if plan.helpers.pool(family) is not None:
        return family
    if family == "windows" and plan.helpers.pool("linux") is not None:
        return "linux"
    return None


def missing_helper(family: str, index: int, name: str) -> tuple[Loc, str]:
    """The problem of a VM to prepare whose family has no helper."""
    if family == "windows":
        return (
            ("helpers", "windows"),
            f"required: vms[{index}] ({name}) is a Windows VM to prepare (name a Windows"
            " helper, or a Linux one that prepares it offline; or set prepare: false on it)",
        )
    return (
        ("helpers", family),
        f"required: vms[{index}] ({name}) is a Linux VM to prepare (or set prepare: false on it)",
    )


def subscription_problems(plan: RestorePlan, subscription: str) -> list[tuple[Loc, str]]:
    """Disks attach only to VMs, and NICs only join subnets, of their own subscription."""
    problems: list[tuple[Loc, str]] = []
    ids: list[tuple[Loc, str | None, ResourceKind]] = [
        (("target", "subnet"), plan.target.subnet, SUBNET_TYPE),
    ]
    for family, index, helper in plan.helpers.vm_ids():
        loc: Loc = ("helpers", family) if index is None else ("helpers", family, index)
        ids.append((loc, helper, VM_TYPE))
    for family in ("linux", "windows"):
        pool = plan.helpers.pool(family)
        if pool is not None and pool.create is not None:
            ids.append((("helpers", family, "subnet"), pool.create.subnet, SUBNET_TYPE))
    ids += [(("vms", i, "subnet"), vm.subnet, SUBNET_TYPE) for i, vm in enumerate(plan.vms)]
    for loc, value, kind in ids:
        if value is None:
            continue
        theirs = parse_resource_id(value, kind).subscription
        if theirs.lower() != subscription.lower():
            problems.append(
                (loc, f"is in subscription {theirs}, not in the target's ({subscription})")
            )
    return problems
