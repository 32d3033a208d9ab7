"""Virtual machine records (data disk slots, run commands) and their views."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azrestore.emulator.arm.state.operations import Operation
from azrestore.emulator.arm.state.resource import ResourceRecord

__all__ = [
    "DataDisk",
    "DataDiskView",
    "RunCommandRecord",
    "RunCommandView",
    "VmRecord",
    "VmView",
]


@dataclass(frozen=True)
class DataDiskView:
    """A data disk of a VM."""

    lun: int
    disk_id: str
    name: str


@dataclass(frozen=True)
class VmView:
    """A virtual machine as the simulator holds it."""

    id: str
    name: str
    resource_group: str
    location: str
    provisioning_state: str
    power_state: str
    vm_size: str
    os_type: str
    hyper_v_generation: str
    os_disk_id: str
    data_disks: tuple[DataDiskView, ...]
    nic_ids: tuple[str, ...]
    image_reference: Mapping[str, str] | None
    agent_status: str
    """``Ready``, ``Not Ready``, or ``Unknown`` while the VM is not running."""
    tags: Mapping[str, str]


@dataclass
class DataDisk:
    """A VM's data disk slot."""

    lun: int
    disk_id: str
    name: str
    create_option: str
    caching: str
    delete_option: str


@dataclass
class VmRecord(ResourceRecord):
    """A virtual machine."""

    vm_uuid: str
    vm_size: str
    os_type: str
    hyper_v_generation: str
    os_disk_id: str
    os_disk_name: str
    os_disk_create_option: str
    os_disk_caching: str
    os_disk_delete_option: str
    image_reference: dict[str, Any] | None
    os_profile: dict[str, Any] | None
    data_disks: list[DataDisk]
    nics: list[tuple[str, bool]]
    time_created: datetime
    provisioning_state: str = "Creating"
    power_state: str = "starting"
    agent_ready_at: float | None = None
    #: securityProfile: TrustedLaunch (or None), and its UEFI settings
    security_type: str | None = None
    secure_boot: bool = False
    vtpm: bool = False
    #: Why the emulated firmware did not boot the OS disk (secure boot), in its boot
    #: diagnostics; None when it booted
    boot_failure: str | None = None
    run_command: Operation | None = None
    deleting: bool = False
    #: NICs (id keys) whose ``deleteOption`` is Delete: they go with the VM
    nics_deleted_with_vm: set[str] = field(default_factory=set)

    def agent_status(self) -> str:
        """``Ready`` once the agent reported (see :attr:`agent_ready_at`), else ``Not Ready``."""
        if self.power_state != "running":
            return "Unknown"
        if self.agent_ready_at is not None and time.monotonic() >= self.agent_ready_at:
            return "Ready"
        return "Not Ready"

    def view(self) -> VmView:
        """A frozen snapshot."""
        return VmView(
            **self.place(),
            provisioning_state=self.provisioning_state,
            power_state=self.power_state,
            vm_size=self.vm_size,
            os_type=self.os_type,
            hyper_v_generation=self.hyper_v_generation,
            os_disk_id=self.os_disk_id,
            data_disks=tuple(
                DataDiskView(lun=d.lun, disk_id=d.disk_id, name=d.name)
                for d in sorted(self.data_disks, key=lambda d: d.lun)
            ),
            nic_ids=tuple(nic_id for nic_id, _ in self.nics),
            image_reference=dict(self.image_reference) if self.image_reference else None,
            agent_status=self.agent_status(),
            tags=dict(self.tags),
        )


@dataclass(frozen=True)
class RunCommandView:
    """One run command: what was asked, and what it did."""

    operation_id: str
    vm_id: str
    command_id: str
    script: tuple[str, ...]
    parameters: tuple[tuple[str, str], ...]
    status: str
    started: datetime
    ended: datetime | None
    exit_code: int | None
    stdout: str
    stderr: str
    error_code: str | None
    prepared_disks: tuple[str, ...]
    ran: bool = False
    """Whether the script really ran (in a guest sandbox), not answered by a rule or
    recorded."""


@dataclass
class RunCommandRecord:
    """A run command, kept for :class:`RunCommandView`."""

    operation: Operation
    vm_id: str
    command_id: str
    script: tuple[str, ...]
    parameters: tuple[tuple[str, str], ...]
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    prepared_disks: tuple[str, ...] = ()
    ran: bool = False

    def view(self) -> RunCommandView:
        """A frozen snapshot."""
        return RunCommandView(
            operation_id=self.operation.id,
            vm_id=self.vm_id,
            command_id=self.command_id,
            script=self.script,
            parameters=self.parameters,
            status=self.operation.status,
            started=self.operation.started,
            ended=self.operation.ended,
            exit_code=self.exit_code,
            stdout=self.stdout,
            stderr=self.stderr,
            error_code=self.operation.error.code if self.operation.error else None,
            prepared_disks=self.prepared_disks,
            ran=self.ran,
        )
