"""The Azure resource ids a restored VM's resources get: the VM, its managed disks and its
network interface, in the plan's subscription and the VM's resource group."""

from __future__ import annotations

from .plan import ResolvedDisk, ResolvedVm


def _group(subscription: str, vm: ResolvedVm) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{vm.resource_group}"


def vm_resource_id(subscription: str, vm: ResolvedVm) -> str:
    return f"{_group(subscription, vm)}/providers/Microsoft.Compute/virtualMachines/{vm.name}"


def disk_resource_id(subscription: str, vm: ResolvedVm, disk: ResolvedDisk) -> str:
    return f"{_group(subscription, vm)}/providers/Microsoft.Compute/disks/{disk.name}"


def nic_resource_id(subscription: str, vm: ResolvedVm) -> str:
    return f"{_group(subscription, vm)}/providers/Microsoft.Network/networkInterfaces/{vm.name}-nic"
