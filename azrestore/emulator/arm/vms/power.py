"""The VM power state machine: start, powerOff, deallocate and restart, each a transition
state while its operation runs (``starting``, ``stopping``, ``deallocating``) and a final
one after; the guest agent stops with the VM and reports again after a start."""

from __future__ import annotations

from collections.abc import Callable

from azrestore.emulator.arm.calls import Call, Reply
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.state.vms import VmRecord
from azrestore.emulator.arm.vms.agent import agent_after_boot
from azrestore.emulator.arm.vms.resources import VmResources

__all__ = ["VmPower"]


class VmPower(VmResources):
    """Handles the power actions of a VM."""

    def _power_action(
        self,
        call: Call,
        vm: VmRecord,
        *,
        name: str,
        transition: str,
        final: str,
        after: Callable[[], None] | None = None,
    ) -> Reply:
        previous = vm.power_state
        vm.power_state = transition
        vm.provisioning_state = "Updating"
        if transition != "running":
            vm.agent_ready_at = None

        async def run() -> None:
            vm.power_state = final
            vm.provisioning_state = "Succeeded"
            if after is not None:
                after()

        def rollback(error: ArmError) -> None:
            vm.power_state = previous
            vm.provisioning_state = "Failed"

        operation = self.core.operations.begin_on(
            call,
            vm,
            name=name,
            provider="compute",
            run=run,
            rollback=rollback,
        )
        return self.core.operations.accepted(call, operation)

    async def start(self, call: Call, name: str) -> Reply:
        """POST start."""
        vm = self.find(call, name)
        self.refuse_if_busy(vm, "Start VM")
        for disk in self.registry.disks_of(vm):
            if disk.grant is not None:
                raise ArmError(
                    409,
                    "OperationNotAllowed",
                    f"Cannot start VM '{vm.name}': disk '{disk.name}' has an active SAS "
                    "(revoke access first).",
                )
        return self._power_action(
            call,
            vm,
            name="virtualMachines/start",
            transition="starting",
            final="running",
            after=lambda: agent_after_boot(self.core, vm),
        )

    async def power_off(self, call: Call, name: str) -> Reply:
        """POST powerOff."""
        vm = self.find(call, name)
        self.refuse_if_busy(vm, "Power off VM")
        if vm.power_state in ("stopped", "deallocated"):
            return self._power_action(
                call,
                vm,
                name="virtualMachines/powerOff",
                transition=vm.power_state,
                final=vm.power_state,
            )
        return self._power_action(
            call, vm, name="virtualMachines/powerOff", transition="stopping", final="stopped"
        )

    async def deallocate(self, call: Call, name: str) -> Reply:
        """POST deallocate."""
        vm = self.find(call, name)
        self.refuse_if_busy(vm, "Deallocate VM")
        return self._power_action(
            call,
            vm,
            name="virtualMachines/deallocate",
            transition="deallocating",
            final="deallocated",
        )

    async def restart(self, call: Call, name: str) -> Reply:
        """POST restart (the VM must be running)."""
        vm = self.find(call, name)
        self.refuse_if_busy(vm, "Restart VM")
        if vm.power_state != "running":
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Operation 'Restart VM' is not allowed on VM '{vm.name}' since the VM is "
                f"{vm.power_state}. Start the VM instead.",
            )
        return self._power_action(
            call,
            vm,
            name="virtualMachines/restart",
            transition="starting",
            final="running",
            after=lambda: agent_after_boot(self.core, vm),
        )
