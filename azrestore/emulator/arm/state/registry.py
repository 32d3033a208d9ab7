"""All records of one simulator, keyed by lower-case resource id."""

from __future__ import annotations

from collections.abc import Iterator

from azrestore.emulator.arm.resource_ids import id_key
from azrestore.emulator.arm.state.disks import DiskRecord
from azrestore.emulator.arm.state.network import NicRecord, VnetRecord
from azrestore.emulator.arm.state.operations import Operation
from azrestore.emulator.arm.state.snapshot import SimulatorState
from azrestore.emulator.arm.state.vms import RunCommandRecord, VmRecord

__all__ = ["Registry"]


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
            vm = self.vms.get(id_key(disk.managed_by))
            if vm is not None and vm.power_state in ("deallocated", "deallocating"):
                return "Reserved"
            return "Attached"
        if disk.create_option == "Upload" and not disk.uploaded:
            return "ReadyToUpload"
        return "Unattached"

    def disks_of(self, vm: VmRecord) -> Iterator[DiskRecord]:
        """The VM's OS disk and data disks that exist."""
        for disk_id in [vm.os_disk_id, *(d.disk_id for d in vm.data_disks)]:
            disk = self.disks.get(id_key(disk_id))
            if disk is not None:
                yield disk

    def snapshot(self) -> SimulatorState:
        """Frozen views of everything."""
        return SimulatorState(
            disks={d.id: d.view(self.disk_state(d)) for d in self.disks.values()},
            virtual_machines={v.id: v.view() for v in self.vms.values()},
            network_interfaces={n.id: n.view() for n in self.nics.values()},
            virtual_networks={v.id: v.view() for v in self.vnets.values()},
            run_commands=tuple(r.view() for r in self.run_commands),
            operations=tuple(op.view() for op in self.operations.values()),
        )
