"""A VM's instance view: provisioning and power statuses, its disks, and the guest agent's
status as the VM would report it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from azrestore.emulator.arm.clock import iso
from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.state.vms import VmRecord

__all__ = ["instance_view_body"]

_POWER_DISPLAY: Final[Mapping[str, str]] = {
    "running": "VM running",
    "starting": "VM starting",
    "stopping": "VM stopping",
    "stopped": "VM stopped",
    "deallocating": "VM deallocating",
    "deallocated": "VM deallocated",
}
_AGENT_VERSION: Final = "2.12.0.2"


def instance_view_body(core: Core, vm: VmRecord) -> dict[str, Any]:
    """The VM's instance view (statuses, guest agent, disks)."""
    now = iso(core.clock.now())
    state = vm.provisioning_state.lower()
    if state == "failed":
        pending = vm.pending
        code = pending.error.code if pending is not None and pending.error else "Unknown"
        provisioning: dict[str, Any] = {
            "code": f"ProvisioningState/failed/{code}",
            "level": "Error",
            "displayStatus": "Provisioning failed",
            "message": pending.error.message if pending is not None and pending.error else "",
            "time": now,
        }
    else:
        provisioning = {
            "code": f"ProvisioningState/{state}",
            "level": "Info",
            "displayStatus": "Provisioning succeeded"
            if state == "succeeded"
            else vm.provisioning_state,
            "time": now,
        }
    statuses = [
        provisioning,
        {
            "code": f"PowerState/{vm.power_state}",
            "level": "Info",
            "displayStatus": _POWER_DISPLAY[vm.power_state],
        },
    ]
    view: dict[str, Any] = {
        "hyperVGeneration": vm.hyper_v_generation,
        "disks": [
            {
                "name": disk.name,
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Provisioning succeeded",
                        "time": now,
                    }
                ],
            }
            for disk in core.registry.disks_of(vm)
        ],
        "statuses": statuses,
    }
    if vm.power_state == "running" and vm.boot_failure is not None:
        view["bootDiagnostics"] = {
            "status": {
                "code": "BootDiagnostics/BootFailure",
                "level": "Error",
                "displayStatus": "Boot failed",
                "message": vm.boot_failure,
                "time": now,
            }
        }
    if vm.os_profile is not None and "computerName" in vm.os_profile:
        view["computerName"] = vm.os_profile["computerName"]
    if vm.power_state == "running":
        if vm.agent_status() == "Ready":
            agent_status = {
                "code": "ProvisioningState/succeeded",
                "level": "Info",
                "displayStatus": "Ready",
                "message": "Guest Agent is running",
                "time": now,
            }
            version = _AGENT_VERSION
        else:
            agent_status = {
                "code": "ProvisioningState/Unavailable",
                "level": "Warning",
                "displayStatus": "Not Ready",
                "message": "VM status blob is found but not yet populated.",
                "time": now,
            }
            version = "Unknown"
        view["vmAgent"] = {"vmAgentVersion": version, "statuses": [agent_status]}
    return view
