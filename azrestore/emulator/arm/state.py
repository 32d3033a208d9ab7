"""The simulator's resources (mutable records) and their read-only snapshots.

Records are mutated only on the simulator's event loop.  :meth:`Registry.snapshot` turns
them into frozen dataclasses (:class:`SimulatorState`) that tests and the
``GET /_emulator/state`` endpoint read; :meth:`SimulatorState.to_json` is that endpoint's body.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from azrestore.emulator.arm.errors import ArmError

__all__ = [
    "DataDiskView",
    "DiskView",
    "LogEntry",
    "NicView",
    "OperationView",
    "PreparedMark",
    "RunCommandView",
    "SimulatorState",
    "SubnetView",
    "VmView",
    "VnetView",
]

OperationStatus = Literal["InProgress", "Succeeded", "Failed"]


def key(resource_id: str) -> str:
    """Resource ids are case-insensitive in ARM: the dictionary key of one."""
    return resource_id.rstrip("/").lower()


# -- public snapshots -------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedMark:
    """Which run command prepared a disk (attached as a data disk to the VM that ran it)."""

    vm_id: str
    command_id: str
    script: tuple[str, ...]
    parameters: tuple[tuple[str, str], ...]
    operation_id: str
    time: datetime


@dataclass(frozen=True)
class DiskView:
    """A managed disk as the simulator holds it."""

    id: str
    name: str
    resource_group: str
    location: str
    disk_state: str
    provisioning_state: str
    create_option: str
    disk_size_bytes: int
    upload_size_bytes: int | None
    hyper_v_generation: str | None
    os_type: str | None
    managed_by: str | None
    unique_id: str
    tags: Mapping[str, str]
    prepared: PreparedMark | None
    blob_path: str | None
    """The backing page blob in the storage account (``/container/abcd``), once it exists."""


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


@dataclass(frozen=True)
class NicView:
    """A network interface."""

    id: str
    name: str
    resource_group: str
    location: str
    subnet_id: str
    private_ip: str
    vm_id: str | None
    provisioning_state: str


@dataclass(frozen=True)
class SubnetView:
    """A subnet of a virtual network."""

    id: str
    name: str
    address_prefix: str


@dataclass(frozen=True)
class VnetView:
    """A virtual network."""

    id: str
    name: str
    resource_group: str
    location: str
    address_prefixes: tuple[str, ...]
    subnets: tuple[SubnetView, ...]
    provisioning_state: str


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


@dataclass(frozen=True)
class OperationView:
    """One long-running operation."""

    id: str
    name: str
    resource_id: str
    status: str
    started: datetime
    ended: datetime | None
    error_code: str | None
    error_message: str | None


@dataclass(frozen=True)
class LogEntry:
    """One line of the simulator's log: a request served, or an operation that ended.

    ``kind`` is ``request`` or ``operation``; ``outcome`` is ``ok``, ``accepted`` (a
    long-running operation started) or the error code for requests, ``Succeeded`` or
    ``Failed`` for operations; ``fault`` tells an injected fault.  ``elapsed`` counts real
    seconds since the simulator started.
    """

    seq: int
    time: datetime
    elapsed: float
    kind: str
    method: str | None
    path: str
    resource_id: str | None
    operation: str
    api_version: str | None
    status: int | None
    outcome: str
    fault: bool = False
    operation_id: str | None = None
    error_code: str | None = None

    @property
    def is_poll(self) -> bool:
        """Whether this is a poll of an operation monitor."""
        return self.operation.startswith("operations/")


def _find(items: Mapping[str, Any], name: str, what: str) -> Any:
    found = [item for item in items.values() if item.name.lower() == name.lower()]
    if len(found) != 1:
        raise KeyError(f"{len(found)} {what} named {name!r}")
    return found[0]


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class SimulatorState:
    """A snapshot of everything the simulator holds (mappings keyed by resource id)."""

    disks: Mapping[str, DiskView]
    virtual_machines: Mapping[str, VmView]
    network_interfaces: Mapping[str, NicView]
    virtual_networks: Mapping[str, VnetView]
    run_commands: tuple[RunCommandView, ...]
    operations: tuple[OperationView, ...]

    def disk(self, name: str) -> DiskView:
        """The one disk named ``name`` (any resource group); KeyError if none or several."""
        disk: DiskView = _find(self.disks, name, "disks")
        return disk

    def vm(self, name: str) -> VmView:
        """The one VM named ``name``."""
        vm: VmView = _find(self.virtual_machines, name, "virtual machines")
        return vm

    def nic(self, name: str) -> NicView:
        """The one network interface named ``name``."""
        nic: NicView = _find(self.network_interfaces, name, "network interfaces")
        return nic

    def vnet(self, name: str) -> VnetView:
        """The one virtual network named ``name``."""
        vnet: VnetView = _find(self.virtual_networks, name, "virtual networks")
        return vnet

    def to_json(self) -> dict[str, Any]:
        """The snapshot as JSON-ready data (datetimes as ISO 8601)."""
        data: dict[str, Any] = _jsonable(self)
        return data


# -- mutable records --------------------------------------------------------------------------


@dataclass
class Operation:
    """A long-running operation and its monitor."""

    id: str
    name: str
    resource_id: str
    location: str
    namespace: str
    monitor_kind: str
    """URL segment of the monitor: ``operations`` or ``DiskOperations``."""
    api_version: str
    started: datetime
    retry_after: float
    status: OperationStatus = "InProgress"
    ended: datetime | None = None
    error: ArmError | None = None
    result: Any = None
    """The body the Location URL answers once done (AccessUri, RunCommandResult) or None."""
    has_output: bool = False

    @property
    def running(self) -> bool:
        """Whether the operation is still in progress."""
        return self.status == "InProgress"

    def view(self) -> OperationView:
        """A frozen snapshot."""
        return OperationView(
            id=self.id,
            name=self.name,
            resource_id=self.resource_id,
            status=self.status,
            started=self.started,
            ended=self.ended,
            error_code=self.error.code if self.error else None,
            error_message=self.error.message if self.error else None,
        )


@dataclass
class Grant:
    """An access grant on a disk (beginGetAccess)."""

    access: str
    expiry: datetime
    signatures: set[str] = field(default_factory=set)


class _Pending:
    """A resource that one long-running operation at a time may be working on (for a VM:
    not counting run commands, which have their own slot)."""

    pending: Operation | None

    @property
    def busy(self) -> bool:
        """Whether the resource's operation is in progress."""
        return self.pending is not None and self.pending.running


@dataclass
class DiskRecord(_Pending):
    """A managed disk."""

    id: str
    name: str
    subscription: str
    resource_group: str
    location: str
    tags: dict[str, str]
    sku: str
    create_option: str
    disk_size_bytes: int
    hyper_v_generation: str | None
    os_type: str | None
    unique_id: str
    time_created: datetime
    upload_size_bytes: int | None = None
    source_uri: str | None = None
    storage_account_id: str | None = None
    image_reference: dict[str, Any] | None = None
    provisioning_state: str = "Updating"
    uploaded: bool = False
    managed_by: str | None = None
    grant: Grant | None = None
    prepared: PreparedMark | None = None
    container: str | None = None
    blob_ready: bool = False
    pending: Operation | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Request properties the simulator does not model, echoed back (encryption, ...)."""


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
class VmRecord(_Pending):
    """A virtual machine."""

    id: str
    name: str
    subscription: str
    resource_group: str
    location: str
    tags: dict[str, str]
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
    pending: Operation | None = None
    run_command: Operation | None = None
    deleting: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def agent_status(self) -> str:
        """``Ready`` once the agent reported (see :attr:`agent_ready_at`), else ``Not Ready``."""
        if self.power_state != "running":
            return "Unknown"
        if self.agent_ready_at is not None and time.monotonic() >= self.agent_ready_at:
            return "Ready"
        return "Not Ready"


@dataclass
class IpConfig:
    """A NIC's IP configuration."""

    name: str
    subnet_id: str
    private_ip: str
    allocation: str
    primary: bool


@dataclass
class NicRecord(_Pending):
    """A network interface."""

    id: str
    name: str
    subscription: str
    resource_group: str
    location: str
    tags: dict[str, str]
    ip_configs: list[IpConfig]
    resource_guid: str
    mac: str
    provisioning_state: str = "Succeeded"
    vm_id: str | None = None
    pending: Operation | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SubnetRecord:
    """A subnet."""

    id: str
    name: str
    address_prefix: str
    provisioning_state: str = "Succeeded"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class VnetRecord(_Pending):
    """A virtual network."""

    id: str
    name: str
    subscription: str
    resource_group: str
    location: str
    tags: dict[str, str]
    address_prefixes: list[str]
    subnets: dict[str, SubnetRecord]
    resource_guid: str
    provisioning_state: str = "Updating"
    pending: Operation | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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


class Registry:
    """All records, keyed by lower-case resource id."""

    def __init__(self) -> None:
        self.resource_groups: dict[str, tuple[str, str]] = {}
        self.disks: dict[str, DiskRecord] = {}
        self.vms: dict[str, VmRecord] = {}
        self.nics: dict[str, NicRecord] = {}
        self.vnets: dict[str, VnetRecord] = {}
        self.operations: dict[str, Operation] = {}
        self.run_commands: list[RunCommandRecord] = []

    def disk_state(self, disk: DiskRecord) -> str:
        """Azure's ``diskState`` of a disk (derived from grants and attachment)."""
        if disk.grant is not None:
            return "ActiveUpload" if disk.grant.access == "Write" else "ActiveSAS"
        if disk.managed_by is not None:
            vm = self.vms.get(key(disk.managed_by))
            if vm is not None and vm.power_state in ("deallocated", "deallocating"):
                return "Reserved"
            return "Attached"
        if disk.create_option == "Upload" and not disk.uploaded:
            return "ReadyToUpload"
        return "Unattached"

    def disks_of(self, vm: VmRecord) -> Iterator[DiskRecord]:
        """The VM's OS disk and data disks that exist."""
        for disk_id in [vm.os_disk_id, *(d.disk_id for d in vm.data_disks)]:
            disk = self.disks.get(key(disk_id))
            if disk is not None:
                yield disk

    def snapshot(self) -> SimulatorState:
        """Frozen views of everything."""
        disks = {
            d.id: DiskView(
                id=d.id,
                name=d.name,
                resource_group=d.resource_group,
                location=d.location,
                disk_state=self.disk_state(d),
                provisioning_state=d.provisioning_state,
                create_option=d.create_option,
                disk_size_bytes=d.disk_size_bytes,
                upload_size_bytes=d.upload_size_bytes,
                hyper_v_generation=d.hyper_v_generation,
                os_type=d.os_type,
                managed_by=d.managed_by,
                unique_id=d.unique_id,
                tags=dict(d.tags),
                prepared=d.prepared,
                blob_path=None if d.container is None else f"/{d.container}/abcd",
            )
            for d in self.disks.values()
        }
        vms = {
            v.id: VmView(
                id=v.id,
                name=v.name,
                resource_group=v.resource_group,
                location=v.location,
                provisioning_state=v.provisioning_state,
                power_state=v.power_state,
                vm_size=v.vm_size,
                os_type=v.os_type,
                hyper_v_generation=v.hyper_v_generation,
                os_disk_id=v.os_disk_id,
                data_disks=tuple(
                    DataDiskView(lun=d.lun, disk_id=d.disk_id, name=d.name)
                    for d in sorted(v.data_disks, key=lambda d: d.lun)
                ),
                nic_ids=tuple(nic_id for nic_id, _ in v.nics),
                image_reference=dict(v.image_reference) if v.image_reference else None,
                agent_status=v.agent_status(),
                tags=dict(v.tags),
            )
            for v in self.vms.values()
        }
        nics = {
            n.id: NicView(
                id=n.id,
                name=n.name,
                resource_group=n.resource_group,
                location=n.location,
                subnet_id=n.ip_configs[0].subnet_id,
                private_ip=n.ip_configs[0].private_ip,
                vm_id=n.vm_id,
                provisioning_state=n.provisioning_state,
            )
            for n in self.nics.values()
        }
        vnets = {
            v.id: VnetView(
                id=v.id,
                name=v.name,
                resource_group=v.resource_group,
                location=v.location,
                address_prefixes=tuple(v.address_prefixes),
                subnets=tuple(
                    SubnetView(id=s.id, name=s.name, address_prefix=s.address_prefix)
                    for s in v.subnets.values()
                ),
                provisioning_state=v.provisioning_state,
            )
            for v in self.vnets.values()
        }
        run_commands = tuple(
            RunCommandView(
                operation_id=r.operation.id,
                vm_id=r.vm_id,
                command_id=r.command_id,
                script=r.script,
                parameters=r.parameters,
                status=r.operation.status,
                started=r.operation.started,
                ended=r.operation.ended,
                exit_code=r.exit_code,
                stdout=r.stdout,
                stderr=r.stderr,
                error_code=r.operation.error.code if r.operation.error else None,
                prepared_disks=r.prepared_disks,
            )
            for r in self.run_commands
        )
        return SimulatorState(
            disks=disks,
            virtual_machines=vms,
            network_interfaces=nics,
            virtual_networks=vnets,
            run_commands=run_commands,
            operations=tuple(op.view() for op in self.operations.values()),
        )
