"""What the VM handlers share: finding a VM and the disks it refers to, and refusing
requests while another operation works on the VM."""

from __future__ import annotations

from typing import Final

from azrestore.emulator.arm.calls import Call
from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.errors import ArmError, concurrent_conflict, resource_not_found
from azrestore.emulator.arm.resource_ids import arm_id, id_key, resource_id_segments
from azrestore.emulator.arm.state.disks import DiskRecord
from azrestore.emulator.arm.state.registry import Registry
from azrestore.emulator.arm.state.vms import VmRecord

__all__ = ["MARKED_FOR_DELETION", "VM_TYPE", "VmResources", "disk_by_id"]

VM_TYPE: Final = "Microsoft.Compute/virtualMachines"
MARKED_FOR_DELETION: Final = (
    "Operation '{op}' is not allowed on VM '{name}' since the VM is marked for deletion. You "
    "can only retry the Delete operation (or wait for an ongoing one to complete)."
)


def disk_by_id(registry: Registry, disk_id: str) -> DiskRecord:
    """The disk a VM body refers to, or 404 ResourceNotFound."""
    disk = registry.disks.get(id_key(disk_id))
    if disk is None:
        parts = resource_id_segments(disk_id)
        raise resource_not_found(
            "Microsoft.Compute/disks",
            parts.get("disks", disk_id),
            parts.get("resourcegroups", ""),
        )
    return disk


class VmResources:
    """The base of the VM handlers: the core, and lookups."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.registry = core.registry
        self.clock = core.clock

    def vm_id(self, call: Call, name: str) -> str:
        """The id of the VM ``name`` in the call's resource group."""
        assert call.resource_group is not None
        return arm_id(
            call.subscription, call.resource_group, "Microsoft.Compute", "virtualMachines", name
        )

    def find(self, call: Call, name: str) -> VmRecord:
        """The VM, or 404 ResourceNotFound."""
        vm = self.registry.vms.get(id_key(self.vm_id(call, name)))
        if vm is None:
            assert call.resource_group is not None
            raise resource_not_found(VM_TYPE, name, call.resource_group)
        return vm

    def refuse_if_busy(self, vm: VmRecord, operation: str) -> None:
        """409 while the VM is being deleted or another operation works on it."""
        if vm.deleting:
            raise ArmError(
                409, "OperationNotAllowed", MARKED_FOR_DELETION.format(op=operation, name=vm.name)
            )
        if vm.busy:
            raise concurrent_conflict()
