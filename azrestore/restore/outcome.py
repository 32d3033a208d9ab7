"""What a restore run tells as it goes (:class:`RestoreObserver`) and what it returns at the
end (:class:`RestoreReport`: per VM its status, steps and disks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..transfer.progress import ProgressEvent


class RestoreObserver(Protocol):
    """What a live view subscribes to. Called on the event loop thread."""

    def step(self, vm: str, step: str) -> None: ...

    def disk_progress(self, vm: str, disk: str, event: ProgressEvent) -> None: ...


@dataclass
class RestoredDisk:
    """One disk of a restored VM: the managed disk it became, and whether it was uploaded
    by this run or reused from an earlier one."""

    path: str
    role: str
    lun: int | None
    disk_id: str | None = None
    bytes_uploaded: int = 0
    reused: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "role": self.role,
            "lun": self.lun,
            "disk_id": self.disk_id,
            "bytes_uploaded": self.bytes_uploaded,
            "reused": self.reused,
        }


@dataclass
class VmOutcome:
    """One VM of the plan: how far its chain of steps got, and why it stopped."""

    name: str
    os: str
    generation: str
    status: str = "pending"
    vm_id: str | None = None
    error: str | None = None
    steps: list[str] = field(default_factory=list)
    disks: list[RestoredDisk] = field(default_factory=list)
    #: resources this VM's restore created or reused, reported if it fails
    resources: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "vm_id": self.vm_id,
            "os": self.os,
            "generation": self.generation,
            "disks": [disk.to_json() for disk in self.disks],
            "steps": self.steps,
            "error": self.error,
        }


def note_step(outcome: VmOutcome, step: str, observer: RestoreObserver | None) -> None:
    """Record that ``outcome``'s VM has reached ``step``, and tell the observer."""
    outcome.steps.append(step)
    if observer is not None:
        observer.step(outcome.name, step)


@dataclass
class RestoreReport:
    """The end of a run: every VM's outcome, what failed VMs left in Azure, and the power
    history of the shared VMs (proxy, helpers)."""

    vms: list[VmOutcome]
    left_in_azure: list[str]
    seconds: float
    shared_vms: dict[str, list[str]] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return all(vm.status == "succeeded" for vm in self.vms)

    def to_json(self) -> dict[str, Any]:
        return {
            "vms": [vm.to_json() for vm in self.vms],
            "left_in_azure": self.left_in_azure,
            "shared_vms": self.shared_vms,
            "seconds": round(self.seconds, 3),
        }
