"""Steps 6 and 7 of a VM's restore: register the VM from its prepared disks (and its
network interface), power it on and wait for the Azure agent; and telling a VM an
earlier run registered already."""

from __future__ import annotations

from typing import Any

from ..azure.controlplane import ControlPlane
from ..azure.virtualmachines import security_profile
from ..errors import ControlPlaneError
from .outcome import RestoredDisk, RestoreObserver, VmOutcome, note_step
from .plan import ResolvedPlan, ResolvedVm
from .settings import RestoreSettings
from .targets import disk_resource_id, nic_resource_id, vm_resource_id


class VmRegistration:
    """Registers the run's VMs in the subscription the plan resolved to."""

    def __init__(
        self,
        resolved: ResolvedPlan,
        control: ControlPlane,
        *,
        settings: RestoreSettings,
        observer: RestoreObserver | None,
    ) -> None:
        self.subscription = resolved.subscription
        self.location = resolved.plan.target.location
        self.control = control
        self.settings = settings
        self.observer = observer

    async def restored_already(
        self, vm: ResolvedVm, outcome: VmOutcome
    ) -> dict[int | None, str] | None:
        """A VM registered by an earlier run from this plan's disks: its disks are done
        (uploaded and prepared); only powering on and the agent may remain."""
        existing = await self.control.get_vm(vm_resource_id(self.subscription, vm))
        if existing is None:
            return None
        disk_ids = {disk.lun: disk_resource_id(self.subscription, vm, disk) for disk in vm.disks}
        if (existing.os_disk_id or "").lower() != disk_ids[None].lower():
            raise ControlPlaneError(f"{existing.id}: a VM of that name exists with another OS disk")
        outcome.disks = [
            RestoredDisk(str(d.spec.path), d.spec.role, d.lun, disk_ids[d.lun], reused=True)
            for d in vm.disks
        ]
        return disk_ids

    async def register(
        self, vm: ResolvedVm, outcome: VmOutcome, disk_ids: dict[int | None, str]
    ) -> None:
        note_step(outcome, "register", self.observer)
        vm_id = vm_resource_id(self.subscription, vm)
        nic_id = nic_resource_id(self.subscription, vm)
        outcome.vm_id = vm_id
        existing = await self.control.get_vm(vm_id)
        if existing is None:
            await self.control.ensure_nic(nic_id, subnet_id=vm.subnet, location=self.location)
            outcome.resources.append(nic_id)
            await self.control.create_vm(
                vm_id,
                location=self.location,
                size=vm.spec.size,
                os_disk_id=disk_ids[None],
                os_type="Linux" if vm.os_family == "linux" else "Windows",
                data_disks={lun: d for lun, d in disk_ids.items() if lun is not None},
                nic_id=nic_id,
                tags=vm.tags,
                security=vm_security_profile(vm),
            )
            outcome.resources.append(vm_id)
        else:
            outcome.resources.append(vm_id)
        if vm.spec.power_on:
            info = await self.control.get_vm(vm_id)
            if info is not None and info.power_state != "running":
                note_step(outcome, "power on", self.observer)
                await self.control.start_vm(vm_id)
            if vm.spec.wait_for_agent:
                note_step(outcome, "agent", self.observer)
                await self.control.wait_agent_ready(
                    vm_id,
                    within=self.settings.agent_timeout,
                    interval=self.settings.agent_poll_interval,
                )


def vm_security_profile(vm: ResolvedVm) -> dict[str, Any] | None:
    """The VM's ``securityProfile`` when it is Trusted Launch; None for Standard."""
    choice = vm.security
    if not choice.trusted_launch:
        return None
    return security_profile(secure_boot=choice.secure_boot, vtpm=choice.vtpm)
