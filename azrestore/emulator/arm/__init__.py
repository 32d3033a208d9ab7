"""A Resource Manager simulator that the real azure-mgmt-compute and azure-mgmt-network aio
clients drive unchanged: managed disks (Upload, Import, Empty; grant and revoke access with
Azure's VHD checks), virtual machines (attach disks, power, run commands, guest agent),
virtual networks, subnets and network interfaces; long-running operations with Azure's
headers, monitors and timing; fault rules; a state snapshot and an ordered log.

HTTP shapes (first answer of each request):

=======================================  ==========================================
disk PUT (create)                        202 + disk body, Azure-AsyncOperation, Location
disk PUT (update) / PATCH                200 + disk body, Azure-AsyncOperation, Location
VM PUT                                   201 (create) / 200 (update) + body, Azure-AsyncOperation
VM PATCH                                 200 + body, Azure-AsyncOperation
vnet / subnet / NIC PUT                  201 (create) / 200 (update) + body, Azure-AsyncOperation
POST actions, DELETE                     202, Location, Azure-AsyncOperation, Retry-After
DELETE of a missing resource             204
status monitor (Azure-AsyncOperation)    200 {"name", "status", "startTime"[, "endTime", "error"]}
Location                                 202 until done, then 200 (result or empty) or the error
errors                                   {"error": {"code", "message"[, "target"]}}
=======================================  ==========================================

Error codes with wording taken from recorded Azure answers: ResourceNotFound, BadRequest (upload
size), InvalidVhd (revoke), OperationNotAllowed (deleting an attached disk; VM marked for
deletion; disk owned by another VM), Conflict (concurrent VM update; run command in
progress; SAS on a disk attached to a running VM), PropertyChangeNotAllowed,
VMExtensionProvisioningError, VMAgentStatusCommunicationError, AnotherOperationInProgress,
NicInUse, InvalidResourceReference, ResourceGroupNotFound.  Others follow Azure's phrasing.
"""

from __future__ import annotations

from azrestore.emulator.arm.clock import DEFAULT_DURATIONS
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.faults import ArmFaultAction, ArmFaultRule
from azrestore.emulator.arm.log import LogEntry
from azrestore.emulator.arm.run_command_rules import (
    RunCommandInvocation,
    RunCommandOutcome,
    RunCommandRule,
)
from azrestore.emulator.arm.server import DEFAULT_SUBSCRIPTION, ArmSimulator
from azrestore.emulator.arm.state.disks import DiskView, PreparedMark
from azrestore.emulator.arm.state.network import NicView, SubnetView, VnetView
from azrestore.emulator.arm.state.operations import OperationView
from azrestore.emulator.arm.state.snapshot import SimulatorState
from azrestore.emulator.arm.state.vms import DataDiskView, RunCommandView, VmView
from azrestore.emulator.arm.storage import StorageConfig

__all__ = [
    "DEFAULT_DURATIONS",
    "DEFAULT_SUBSCRIPTION",
    "ArmError",
    "ArmFaultAction",
    "ArmFaultRule",
    "ArmSimulator",
    "DataDiskView",
    "DiskView",
    "LogEntry",
    "NicView",
    "OperationView",
    "PreparedMark",
    "RunCommandInvocation",
    "RunCommandOutcome",
    "RunCommandRule",
    "RunCommandView",
    "SimulatorState",
    "StorageConfig",
    "SubnetView",
    "VmView",
    "VnetView",
]
