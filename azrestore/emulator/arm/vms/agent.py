"""The guest agent: a VM made from a marketplace image has one (its create waits for it); a
VM whose OS disk was attached reports its agent Ready some time after it starts only when
that disk carries the "prepared" mark (see :mod:`.run_command`) and the operating system
the emulator found on it, if it looked, is the VM's, and the firmware booted it (secure boot: see
:mod:`.security`).  Otherwise the agent stays
"Not Ready", and run commands wait for it until they time out
(VMAgentStatusCommunicationError)."""

from __future__ import annotations

import anyio

from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.resource_ids import id_key
from azrestore.emulator.arm.state.registry import Registry
from azrestore.emulator.arm.state.vms import VmRecord

__all__ = ["agent_after_boot", "agent_capable", "wait_for_agent"]


def agent_capable(registry: Registry, vm: VmRecord) -> bool:
    """Whether the VM's OS disk has a working guest agent (an OS the emulator found on it,
    if it looked, must be the VM's own)."""
    disk = registry.disks.get(id_key(vm.os_disk_id))
    if disk is None or vm.boot_failure is not None:
        return False
    if disk.create_option == "FromImage":
        return True
    mark = disk.prepared
    return mark is not None and mark.os in (None, vm.os_type)


def agent_after_boot(core: Core, vm: VmRecord, *, at_once: bool = False) -> None:
    """When a VM that (re)started will report its agent Ready: at once for a fresh image,
    after the agentReady duration for a prepared OS disk, never otherwise."""
    if not agent_capable(core.registry, vm):
        vm.agent_ready_at = None
        return
    delay = 0.0 if at_once else core.clock.duration("virtualMachines/agentReady")
    vm.agent_ready_at = core.clock.monotonic() + delay
    core.notify()


async def wait_for_agent(core: Core, vm: VmRecord) -> None:
    """Wait until the guest agent is Ready, or fail as Azure does when it never reports."""
    deadline = core.clock.monotonic() + core.clock.duration("virtualMachines/agentTimeout")
    while vm.agent_status() != "Ready":
        now = core.clock.monotonic()
        if now >= deadline or id_key(vm.id) not in core.registry.vms:
            raise ArmError(
                409,
                "VMAgentStatusCommunicationError",
                f"VM '{vm.name}' has not reported status for VM agent or extensions. Verify "
                "that the OS is up and healthy, the VM has a running VM agent, and that it "
                "can establish outbound connections to Azure storage. Please refer to "
                "https://aka.ms/vmextensionlinuxtroubleshoot for additional VM agent "
                "troubleshooting information.",
            )
        wake = deadline
        if vm.agent_ready_at is not None:
            wake = min(wake, vm.agent_ready_at)
        with anyio.move_on_after(max(0.0, wake - now)):
            await core.changed.wait()
