"""What a restore run tells as it goes (:class:`RestoreObserver`) and what it returns at the
end (:class:`RestoreReport`: per VM its status, steps and disks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..azure.diskupload import DiskUploadStatus
from ..transfer.progress import ProgressEvent


class RestoreObserver(Protocol):
    """What a live view subscribes to. Called on the event loop thread."""

    def step(self, vm: str, step: str) -> None: ...

    def disk_progress(self, vm: str, disk: str, event: ProgressEvent) -> None: ...

    def finished(self, report: RestoreReport) -> None:
        """The run's report, at its end, also when it is interrupted (Ctrl-C): the
        caller that is stopped midway can still say what the run leaves behind."""
        ...


_OPEN = ("ReadyToUpload", "ActiveUpload", "Creating")


@dataclass
class RestoredDisk:
    """One disk of a restored VM: the managed disk it became, whether it was uploaded by
    this run or reused from an earlier one (and prepared by it already), and where its
    upload stands (``upload``: the disk's state, open access, journal)."""

    path: str
    role: str
    lun: int | None
    disk_id: str | None = None
    bytes_uploaded: int = 0
    reused: bool = False
    prepared: bool = False
    upload: DiskUploadStatus | None = None
    #: page-blob mode: the page blob the disk is imported from
    blob_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "role": self.role,
            "lun": self.lun,
            "disk_id": self.disk_id,
            "bytes_uploaded": self.bytes_uploaded,
            "reused": self.reused,
        }
        if self.upload is not None:
            data["disk_state"] = self.upload.disk_state
            data["access_open"] = self.upload.access_open
            data["journal"] = self.upload.journal
        if self.blob_url is not None:
            data["blob_url"] = self.blob_url.split("?", 1)[0]
        return data

    def left_open(self) -> str | None:
        """Why this disk is left open for upload, in words, or None when it is not."""
        upload = self.upload
        if upload is None or not (upload.access_open or upload.disk_state in _OPEN):
            return None
        return upload.left_behind()


@dataclass
class VmOutcome:
    """One VM of the plan: how far its chain of steps got, and why it stopped."""

    name: str
    os: str
    generation: str
    #: Trusted Launch or Standard, as decided, and why
    security: dict[str, Any] = field(default_factory=dict)
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
            "security": self.security,
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
    #: the run was stopped (Ctrl-C, SIGTERM) before every VM was done
    interrupted: bool = False
    #: the helpers the run created for itself, and whether it deleted them
    #: (``vm_id``, ``family``, ``size``, ``created``, ``deleted``, ``error``)
    created_helpers: list[dict[str, Any]] = field(default_factory=list)
    #: the preparation batches: ``{"helper": id, "vms": [names]}`` each
    batches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return all(vm.status == "succeeded" for vm in self.vms)

    def left_open(self) -> list[tuple[str, str]]:
        """``(disk id, why)`` of every disk the run leaves open for upload."""
        found = []
        for vm in self.vms:
            for disk in vm.disks:
                why = disk.left_open()
                if why is not None and disk.disk_id is not None:
                    found.append((disk.disk_id, why))
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "interrupted": self.interrupted,
            "vms": [vm.to_json() for vm in self.vms],
            "left_in_azure": self.left_in_azure,
            "left_open": [{"disk_id": disk, "why": why} for disk, why in self.left_open()],
            "shared_vms": self.shared_vms,
            "created_helpers": self.created_helpers,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
        }
