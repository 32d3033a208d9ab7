"""Updating a VM (PUT on an existing VM, or PATCH): attach and detach data disks, resize,
change network interfaces or swap the OS disk while deallocated, tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azrestore.emulator.arm.calls import Call, Reply
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.request_bodies import location_of, tags_of
from azrestore.emulator.arm.resource_ids import id_key
from azrestore.emulator.arm.state.disks import DiskRecord
from azrestore.emulator.arm.state.vms import VmRecord
from azrestore.emulator.arm.vms.attachments import parse_data_disks
from azrestore.emulator.arm.vms.os_disk import check_os_disk_swap
from azrestore.emulator.arm.vms.representation import MODELLED, vm_body
from azrestore.emulator.arm.vms.resources import VmResources
from azrestore.emulator.arm.vms.sizes import check_data_disk_count
from azrestore.emulator.arm.vms.validation import check_nic_change, check_size_boots

__all__ = ["VmUpdates"]


class VmUpdates(VmResources):
    """Handles the PUT and PATCH that change an existing VM."""

    async def update(
        self, call: Call, vm: VmRecord, body: Mapping[str, Any], *, patch: bool
    ) -> Reply:
        """Apply ``body`` to ``vm`` (``patch``: a PATCH, which leaves out what it omits)."""
        self.refuse_if_busy(vm, "Update VM")
        props: Mapping[str, Any] = body.get("properties") or {}
        if not patch:
            location_of(body)
        hardware = props.get("hardwareProfile") or {}
        vm_size = str(hardware.get("vmSize") or vm.vm_size)
        check_size_boots(vm_size, vm.hyper_v_generation, update=True)
        storage = props.get("storageProfile") or {}
        current = tuple(vm.data_disks)
        if "dataDisks" in storage or not patch:
            data_disks, created = parse_data_disks(
                self.registry,
                self.clock,
                call,
                vm.name,
                storage.get("dataDisks") or [],
                vm.id,
                vm.location,
                current=current,
                os_disk_id=vm.os_disk_id,
            )
        else:
            data_disks, created = list(current), []
        check_data_disk_count(vm_size, len(data_disks))
        swap_to: DiskRecord | None = None
        os_spec = storage.get("osDisk") or {}
        new_os_id = (os_spec.get("managedDisk") or {}).get("id")
        if new_os_id and id_key(str(new_os_id)) != id_key(vm.os_disk_id):
            swap_to = check_os_disk_swap(self.registry, vm, str(new_os_id))
        nics = vm.nics
        network = props.get("networkProfile")
        if network is not None:
            nics = check_nic_change(self.registry, vm, network)
        tags = tags_of(body) if (not patch or "tags" in body) else vm.tags
        # Claim new disks now; release the dropped ones when the update completes.
        kept = {id_key(d.disk_id) for d in data_disks}
        dropped = [d for d in current if id_key(d.disk_id) not in kept]
        claimed: list[DiskRecord] = []
        for disk in created:
            self.registry.disks[id_key(disk.id)] = disk
        for data_disk in data_disks:
            disk = self.registry.disks[id_key(data_disk.disk_id)]
            if disk.managed_by is None:
                disk.managed_by = vm.id
                claimed.append(disk)
        if swap_to is not None:
            swap_to.managed_by = vm.id
            claimed.append(swap_to)
        old_os_id = vm.os_disk_id
        vm.provisioning_state = "Updating"

        async def run() -> None:
            for disk in created:
                disk.provisioning_state = "Succeeded"
            for data_disk in dropped:
                gone = self.registry.disks.get(id_key(data_disk.disk_id))
                if (
                    gone is not None
                    and gone.managed_by is not None
                    and id_key(gone.managed_by) == id_key(vm.id)
                ):
                    gone.managed_by = None
            if swap_to is not None:
                old = self.registry.disks.get(id_key(old_os_id))
                if old is not None:
                    old.managed_by = None
                vm.os_disk_id = swap_to.id
                vm.os_disk_name = swap_to.name
                vm.os_type = swap_to.os_type or vm.os_type
            for nic_id, _ in vm.nics:
                nic = self.registry.nics.get(id_key(nic_id))
                if nic is not None:
                    nic.vm_id = None
            for nic_id, _ in nics:
                self.registry.nics[id_key(nic_id)].vm_id = vm.id
            vm.nics = list(nics)
            vm.data_disks = list(data_disks)
            vm.vm_size = vm_size
            vm.tags = dict(tags)
            vm.echo_unmodelled(props, MODELLED)
            vm.provisioning_state = "Succeeded"

        def rollback(error: ArmError) -> None:
            for disk in claimed:
                disk.managed_by = None
            for disk in created:
                self.registry.disks.pop(id_key(disk.id), None)
            vm.provisioning_state = "Failed"

        operation = self.core.operations.begin_on(
            call,
            vm,
            name="virtualMachines/update" if patch else "virtualMachines/write",
            provider="compute",
            run=run,
            rollback=rollback,
        )
        reply = vm_body(self.core, vm)
        # The answer shows the requested disks already (Azure echoes the new model).
        reply["properties"]["storageProfile"]["dataDisks"] = [
            {
                "lun": d.lun,
                "name": d.name,
                "createOption": d.create_option,
                "caching": d.caching,
                "managedDisk": {"id": d.disk_id},
                "deleteOption": d.delete_option,
                "toBeDetached": False,
            }
            for d in sorted(data_disks, key=lambda d: d.lun)
        ]
        return Reply(200, reply, self.core.operations.lro_headers(call, operation, location=False))
