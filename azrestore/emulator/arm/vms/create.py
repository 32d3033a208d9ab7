"""Creating a VM: from an attached OS disk or a marketplace image, with its data disks and
network interfaces taken as soon as the request is valid."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from azrestore.emulator.arm.calls import Call, Reply
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.request_bodies import tags_of
from azrestore.emulator.arm.resource_ids import id_key
from azrestore.emulator.arm.state.vms import VmRecord
from azrestore.emulator.arm.vms.agent import agent_after_boot
from azrestore.emulator.arm.vms.representation import MODELLED, vm_body
from azrestore.emulator.arm.vms.resources import VmResources
from azrestore.emulator.arm.vms.security import boot_with_secure_boot
from azrestore.emulator.arm.vms.validation import sanitise_os_profile, validate_new_vm

__all__ = ["VmCreation"]


class VmCreation(VmResources):
    """Handles the PUT that creates a VM."""

    async def create(self, call: Call, name: str, body: Mapping[str, Any]) -> Reply:
        """Create the VM ``name`` that ``body`` describes (201 and a compute operation)."""
        assert call.resource_group is not None
        vm_id = self.vm_id(call, name)
        new = validate_new_vm(self.registry, self.clock, call, name, vm_id, body)
        os_disk = new.os_disk.disk
        os_spec = new.os_spec
        vm = VmRecord(
            id=vm_id,
            name=name,
            subscription=call.subscription,
            resource_group=call.resource_group,
            location=new.location,
            tags=tags_of(body),
            vm_uuid=str(uuid.uuid4()),
            vm_size=new.vm_size,
            os_type=new.os_disk.os_type,
            hyper_v_generation=new.os_disk.generation,
            os_disk_id=os_disk.id,
            os_disk_name=str(os_spec.get("name") or os_disk.name),
            os_disk_create_option=new.os_create_option,
            os_disk_caching=str(os_spec.get("caching") or "ReadWrite"),
            os_disk_delete_option=str(os_spec.get("deleteOption") or "Detach"),
            image_reference=new.os_disk.image_reference,
            os_profile=sanitise_os_profile(new.os_profile),
            data_disks=new.data_disks,
            nics=new.nics,
            time_created=self.clock.now(),
            extra={k: v for k, v in new.properties.items() if k not in MODELLED},
        )
        vm.nics_deleted_with_vm = nics_deleted_with_vm(new.properties)
        vm.security_type = new.security.security_type
        vm.secure_boot, vm.vtpm = new.security.secure_boot, new.security.vtpm
        created = new.created
        # Everything is valid: take the disks and NICs now, so that racing requests see them.
        for disk in created:
            self.registry.disks[id_key(disk.id)] = disk
        for disk_id in [vm.os_disk_id, *(d.disk_id for d in new.data_disks)]:
            self.registry.disks[id_key(disk_id)].managed_by = vm.id
        for nic_id, _ in new.nics:
            self.registry.nics[id_key(nic_id)].vm_id = vm.id
        self.registry.vms[id_key(vm.id)] = vm
        from_image = new.os_create_option == "FromImage"

        async def run() -> None:
            for disk in created:
                disk.provisioning_state = "Succeeded"
            await boot_with_secure_boot(self.core, vm)
            vm.provisioning_state = "Succeeded"
            vm.power_state = "running"
            agent_after_boot(self.core, vm, at_once=from_image)

        def rollback(error: ArmError) -> None:
            vm.provisioning_state = "Failed"
            vm.power_state = "stopped"
            for disk in created:
                disk.provisioning_state = "Succeeded"

        operation = self.core.operations.begin_on(
            call,
            vm,
            name="virtualMachines/write",
            provider="compute",
            run=run,
            rollback=rollback,
            delay=self.clock.duration("virtualMachines/create"),
        )
        return Reply(
            201,
            vm_body(self.core, vm),
            self.core.operations.lro_headers(call, operation, location=False),
        )


def nics_deleted_with_vm(properties: Any) -> set[str]:
    """The NICs of a VM body whose ``deleteOption`` is Delete (Azure's default: Detach)."""
    network = properties.get("networkProfile") if isinstance(properties, Mapping) else None
    found: set[str] = set()
    for entry in (network or {}).get("networkInterfaces") or []:
        option = str((entry.get("properties") or {}).get("deleteOption") or "Detach")
        if option.lower() == "delete" and entry.get("id"):
            found.add(id_key(str(entry["id"])))
    return found
