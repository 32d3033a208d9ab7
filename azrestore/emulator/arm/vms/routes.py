"""Routing of ``Microsoft.Compute/virtualMachines`` requests; reading and deleting VMs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from azrestore.emulator.arm.calls import Call, Reply, Route, bind, method_not_allowed, scope_prefix
from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.resource_ids import arm_id, id_key
from azrestore.emulator.arm.vms.create import VmCreation
from azrestore.emulator.arm.vms.instance_view import instance_view_body
from azrestore.emulator.arm.vms.power import VmPower
from azrestore.emulator.arm.vms.representation import vm_body
from azrestore.emulator.arm.vms.resources import VmResources
from azrestore.emulator.arm.vms.run_command import VmRunCommands
from azrestore.emulator.arm.vms.update import VmUpdates

__all__ = ["VmHandlers"]


class VmHandlers(VmResources):
    """Request handlers for ``Microsoft.Compute/virtualMachines``."""

    def __init__(self, core: Core) -> None:
        super().__init__(core)
        self.creation = VmCreation(core)
        self.updates = VmUpdates(core)
        self.power = VmPower(core)
        self.run_commands = VmRunCommands(core)

    def route(self, call: Call, name: str | None, child: list[str]) -> Route:
        """The route of a request under ``.../Microsoft.Compute/virtualMachines``."""
        method = call.method
        if name is None:
            if method == "GET":
                return Route("virtualMachines/list", self.list_all)
            raise method_not_allowed(method)
        assert call.resource_group is not None
        rid = arm_id(
            call.subscription, call.resource_group, "Microsoft.Compute", "virtualMachines", name
        )

        if not child:
            verbs: dict[str, tuple[str, Callable[[Call, str], Awaitable[Reply]], bool]] = {
                "GET": ("virtualMachines/read", self.get, False),
                "PUT": ("virtualMachines/write", self.put, True),
                "PATCH": ("virtualMachines/update", self.patch, True),
                "DELETE": ("virtualMachines/delete", self.delete, True),
            }
            if method not in verbs:
                raise method_not_allowed(method)
            operation, fn, starts = verbs[method]
            return Route(operation, bind(fn, name), rid, starts_operation=starts)
        action = child[0].lower()
        if len(child) == 1 and method == "GET" and action == "instanceview":
            return Route("virtualMachines/instanceView", bind(self.instance_view, name), rid)
        actions: dict[str, tuple[str, Callable[[Call, str], Awaitable[Reply]]]] = {
            "start": ("virtualMachines/start", self.power.start),
            "poweroff": ("virtualMachines/powerOff", self.power.power_off),
            "deallocate": ("virtualMachines/deallocate", self.power.deallocate),
            "restart": ("virtualMachines/restart", self.power.restart),
            "runcommand": ("virtualMachines/runCommand", self.run_commands.run_command),
        }
        if len(child) == 1 and method == "POST" and action in actions:
            operation, fn = actions[action]
            return Route(operation, bind(fn, name), rid, starts_operation=True)
        raise ArmError(
            404,
            "InvalidResourceType",
            f"The resource type 'virtualMachines/{child[0]}' could not be found.",
        )

    async def get(self, call: Call, name: str) -> Reply:
        """GET a VM (``$expand=instanceView`` adds the instance view)."""
        vm = self.find(call, name)
        expand = call.query.get("$expand", "").lower() == "instanceview"
        return Reply(200, vm_body(self.core, vm, expand=expand))

    async def instance_view(self, call: Call, name: str) -> Reply:
        """GET .../instanceView."""
        return Reply(200, instance_view_body(self.core, self.find(call, name)))

    async def list_all(self, call: Call) -> Reply:
        """List VMs of a resource group or subscription."""
        prefix = scope_prefix(call)
        items = [
            vm_body(self.core, v) for k, v in self.registry.vms.items() if k.startswith(prefix)
        ]
        return Reply(200, {"value": items})

    async def put(self, call: Call, name: str) -> Reply:
        """PUT a VM: create it, or update an existing one."""
        body = await call.json()
        existing = self.registry.vms.get(id_key(self.vm_id(call, name)))
        if existing is not None:
            return await self.updates.update(call, existing, body, patch=False)
        return await self.creation.create(call, name, body)

    async def patch(self, call: Call, name: str) -> Reply:
        """PATCH a VM."""
        vm = self.find(call, name)
        return await self.updates.update(call, vm, await call.json(), patch=True)

    async def delete(self, call: Call, name: str) -> Reply:
        """DELETE a VM: its disks and NICs detach (or go, with deleteOption Delete)."""
        vm = self.registry.vms.get(id_key(self.vm_id(call, name)))
        if vm is None:
            return Reply(204)
        if vm.deleting and vm.pending is not None and vm.pending.running:
            return self.core.operations.accepted(call, vm.pending)
        self.refuse_if_busy(vm, "Delete VM")
        vm.deleting = True
        vm.provisioning_state = "Deleting"
        previous_power = vm.power_state
        vm.power_state = "deallocating"
        vm.agent_ready_at = None

        async def run() -> None:
            delete_options = {id_key(vm.os_disk_id): vm.os_disk_delete_option}
            delete_options.update({id_key(d.disk_id): d.delete_option for d in vm.data_disks})
            for disk_key, option in delete_options.items():
                disk = self.registry.disks.get(disk_key)
                if disk is None:
                    continue
                disk.managed_by = None
                if option.lower() == "delete":
                    self.registry.disks.pop(disk_key, None)
                    if disk.container is not None and self.core.storage is not None:
                        await self.core.storage.delete(disk.container)
            for nic_id, _ in vm.nics:
                nic = self.registry.nics.get(id_key(nic_id))
                if nic is not None:
                    nic.vm_id = None
                    if id_key(nic_id) in vm.nics_deleted_with_vm:
                        self.registry.nics.pop(id_key(nic_id), None)
            self.registry.vms.pop(id_key(vm.id), None)

        def rollback(error: ArmError) -> None:
            vm.deleting = False
            vm.power_state = previous_power
            vm.provisioning_state = "Failed"

        operation = self.core.operations.begin_on(
            call,
            vm,
            name="virtualMachines/delete",
            provider="compute",
            run=run,
            rollback=rollback,
        )
        return self.core.operations.accepted(call, operation)
