"""A resolved plan: every image inspected, each VM's OS family, generation, disks and
helper decided. Made by :func:`~azrestore.restore.plan.resolve.resolve_plan`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...sources.report import ImageReport
from .document import RestorePlan
from .fields import DiskSku, Generation, OsFamily
from .schema import DiskSpec, VmSpec
from .security import STANDARD, SecurityChoice


@dataclass(frozen=True)
class ResolvedDisk:
    """A disk with its image inspected. ``lun`` is None for the OS disk."""

    spec: DiskSpec
    report: ImageReport
    name: str
    sku: DiskSku
    lun: int | None

    @property
    def size(self) -> int:
        """The disk's size in Azure (a whole number of MiB)."""
        return self.report.virtual_size


@dataclass(frozen=True)
class ResolvedVm:
    """A VM with its OS family and generation decided."""

    index: int
    spec: VmSpec
    os_family: OsFamily
    generation: Generation
    resource_group: str
    subnet: str
    tags: dict[str, str]
    disks: tuple[ResolvedDisk, ...]
    #: The helper VM that prepares the disks (or, with several, what they are); None
    #: when ``prepare: false``.
    helper: str | None
    #: Whose helpers prepare the disks: the VM's family, or ``linux`` for a Windows VM
    #: prepared offline (the plan has no Windows helper); None when ``prepare: false``.
    helper_family: OsFamily | None = None
    #: Trusted Launch or Standard, and why (see :mod:`~azrestore.restore.plan.security`)
    security: SecurityChoice = STANDARD

    @property
    def preparation(self) -> str | None:
        """The script that prepares the disks: ``linux``, ``windows`` (PowerShell on a
        Windows helper) or ``windows-offline`` (on a Linux helper); None: not prepared."""
        if self.helper_family is None:
            return None
        if self.os_family == "windows" and self.helper_family == "linux":
            return "windows-offline"
        return self.os_family

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def os_disk(self) -> ResolvedDisk:
        return next(disk for disk in self.disks if disk.lun is None)

    @property
    def data_disks(self) -> tuple[ResolvedDisk, ...]:
        return tuple(sorted((d for d in self.disks if d.lun is not None), key=_lun))


def _lun(disk: ResolvedDisk) -> int:
    return disk.lun if disk.lun is not None else -1


@dataclass(frozen=True)
class ResolvedPlan:
    """A plan whose images were all inspected, ready to run."""

    plan: RestorePlan
    subscription: str
    vms: tuple[ResolvedVm, ...]
    warnings: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "subscription": self.subscription,
            "location": self.plan.target.location,
            "disks": self.plan.target.disks,
            "vms": [
                {
                    "name": vm.name,
                    "os_family": vm.os_family,
                    "generation": vm.generation,
                    "resource_group": vm.resource_group,
                    "subnet": vm.subnet,
                    "helper": vm.helper,
                    "preparation": vm.preparation,
                    "security": vm.security.to_json(),
                    "boot_chain": vm.os_disk.report.boot_chain.to_json(),
                    "disks": [
                        {
                            "path": str(disk.spec.path),
                            "name": disk.name,
                            "role": disk.spec.role,
                            "lun": disk.lun,
                            "sku": disk.sku,
                            "size": disk.size,
                        }
                        for disk in vm.disks
                    ],
                }
                for vm in self.vms
            ],
            "warnings": list(self.warnings),
        }
