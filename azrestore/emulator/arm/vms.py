"""Virtual machines (``Microsoft.Compute/virtualMachines``): create from an attached OS disk
or a marketplace image, update (attach and detach data disks, resize, swap the OS disk while
deallocated), get (with ``$expand=instanceView``), instance view, start, powerOff,
deallocate, restart, delete and run commands.

The guest agent: a VM made from a marketplace image has one (its create waits for it); a VM
whose OS disk was attached reports its agent Ready some time after it starts only when that
disk carries the "prepared" mark, which a successful run command gives every data disk of
the VM that ran it (a helper appliance preparing restored disks).  Otherwise the agent stays
"Not Ready", and run commands wait for it until they time out (VMAgentStatusCommunicationError).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import anyio

from azrestore.emulator.arm.core import (
    Call,
    Core,
    Reply,
    Route,
    arm_id,
    iso,
    location_of,
    parse_id,
    required,
    scope_prefix,
    tags_of,
)
from azrestore.emulator.arm.disks import GiB
from azrestore.emulator.arm.errors import (
    ArmError,
    concurrent_conflict,
    invalid_parameter,
    missing_parameter,
    resource_not_found,
)
from azrestore.emulator.arm.faults import RunCommandInvocation, RunCommandOutcome
from azrestore.emulator.arm.state import (
    DataDisk,
    DiskRecord,
    PreparedMark,
    RunCommandRecord,
    VmRecord,
    key,
)

__all__ = ["VmHandlers"]

TYPE: Final = "Microsoft.Compute/virtualMachines"
OUTPUT_LIMIT: Final = 4096
MAX_LUN: Final = 63
LINUX_COMMANDS: Final = ("RunShellScript", "ifconfig")
WINDOWS_COMMANDS: Final = (
    "RunPowerShellScript",
    "EnableAdminAccount",
    "EnableRemotePS",
    "IPConfig",
    "RDPSettings",
    "ResetRDPCert",
    "SetRDPPort",
)
_MODELLED: Final = frozenset(
    {
        "hardwareProfile",
        "storageProfile",
        "osProfile",
        "networkProfile",
        "provisioningState",
        "instanceView",
        "vmId",
        "timeCreated",
        "userData",
    }
)
_POWER_DISPLAY: Final[Mapping[str, str]] = {
    "running": "VM running",
    "starting": "VM starting",
    "stopping": "VM stopping",
    "stopped": "VM stopped",
    "deallocating": "VM deallocating",
    "deallocated": "VM deallocated",
}
_AGENT_VERSION: Final = "2.12.0.2"
_MARKED_FOR_DELETION: Final = (
    "Operation '{op}' is not allowed on VM '{name}' since the VM is marked for deletion. You "
    "can only retry the Delete operation (or wait for an ongoing one to complete)."
)


def _gen2_image(sku: str) -> bool:
    sku = sku.lower()
    return "gen2" in sku or sku.endswith("-g2") or "gensecond" in sku


def _size_generations(vm_size: str) -> tuple[str, ...]:
    """Which Hyper-V generations a VM size boots (a small model of Azure's size table)."""
    size = vm_size.lower()
    if size.startswith("basic_a") or re.fullmatch(r"standard_a\d+", size):
        return ("V1",)
    # Arm64 sizes (a "p" in the features, e.g. Standard_D2ps_v5) boot Gen2 only.
    if re.fullmatch(r"standard_[a-z]+\d+[a-z]*p[a-z]*_v\d+", size):
        return ("V2",)
    return ("V1", "V2")


def _truncate(text: str) -> str:
    """The last 4096 bytes of a stream, as Azure reports run command output."""
    data = text.encode("utf-8", "replace")
    if len(data) <= OUTPUT_LIMIT:
        return text
    return data[-OUTPUT_LIMIT:].decode("utf-8", "ignore")


def _lower_choice(value: Any, allowed: tuple[str, ...], path: str) -> str:
    for option in allowed:
        if str(value).lower() == option.lower():
            return option
    raise invalid_parameter(
        path,
        f"The value '{value}' of parameter '{path}' is not allowed. Allowed values: "
        f"{', '.join(allowed)}.",
    )


class VmHandlers:
    """Request handlers for ``Microsoft.Compute/virtualMachines``."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.registry = core.registry
        self.clock = core.clock

    # -- routing -----------------------------------------------------------------------------

    def route(self, call: Call, name: str | None, child: list[str]) -> Route:
        """The route of a request under ``.../Microsoft.Compute/virtualMachines``."""
        method = call.method
        if name is None:
            if method == "GET":
                return Route("virtualMachines/list", self.list_all)
            raise _method_not_allowed(method)
        assert call.resource_group is not None
        rid = arm_id(
            call.subscription, call.resource_group, "Microsoft.Compute", "virtualMachines", name
        )

        def bind(fn: Callable[[Call, str], Awaitable[Reply]]) -> Callable[[Call], Awaitable[Reply]]:
            return lambda c: fn(c, name)

        if not child:
            verbs: dict[str, tuple[str, Callable[[Call, str], Awaitable[Reply]], bool]] = {
                "GET": ("virtualMachines/read", self.get, False),
                "PUT": ("virtualMachines/write", self.put, True),
                "PATCH": ("virtualMachines/update", self.patch, True),
                "DELETE": ("virtualMachines/delete", self.delete, True),
            }
            if method not in verbs:
                raise _method_not_allowed(method)
            operation, fn, starts = verbs[method]
            return Route(operation, bind(fn), rid, starts_operation=starts)
        action = child[0].lower()
        if len(child) == 1 and method == "GET" and action == "instanceview":
            return Route("virtualMachines/instanceView", bind(self.instance_view), rid)
        actions: dict[str, tuple[str, Callable[[Call, str], Awaitable[Reply]]]] = {
            "start": ("virtualMachines/start", self.start),
            "poweroff": ("virtualMachines/powerOff", self.power_off),
            "deallocate": ("virtualMachines/deallocate", self.deallocate),
            "restart": ("virtualMachines/restart", self.restart),
            "runcommand": ("virtualMachines/runCommand", self.run_command),
        }
        if len(child) == 1 and method == "POST" and action in actions:
            operation, fn = actions[action]
            return Route(operation, bind(fn), rid, starts_operation=True)
        raise ArmError(
            404,
            "InvalidResourceType",
            f"The resource type 'virtualMachines/{child[0]}' could not be found.",
        )

    # -- helpers -----------------------------------------------------------------------------

    def _vm_id(self, call: Call, name: str) -> str:
        assert call.resource_group is not None
        return arm_id(
            call.subscription, call.resource_group, "Microsoft.Compute", "virtualMachines", name
        )

    def find(self, call: Call, name: str) -> VmRecord:
        """The VM, or 404 ResourceNotFound."""
        vm = self.registry.vms.get(key(self._vm_id(call, name)))
        if vm is None:
            assert call.resource_group is not None
            raise resource_not_found(TYPE, name, call.resource_group)
        return vm

    def _disk(self, disk_id: str) -> DiskRecord:
        disk = self.registry.disks.get(key(disk_id))
        if disk is None:
            parts = parse_id(disk_id)
            raise resource_not_found(
                "Microsoft.Compute/disks",
                parts.get("disks", disk_id),
                parts.get("resourcegroups", ""),
            )
        return disk

    def _refuse_if_busy(self, vm: VmRecord, operation: str) -> None:
        if vm.deleting:
            raise ArmError(
                409, "OperationNotAllowed", _MARKED_FOR_DELETION.format(op=operation, name=vm.name)
            )
        if vm.busy:
            raise concurrent_conflict()

    def agent_capable(self, vm: VmRecord) -> bool:
        """Whether the VM's OS disk has a working guest agent."""
        disk = self.registry.disks.get(key(vm.os_disk_id))
        return disk is not None and (disk.prepared is not None or disk.create_option == "FromImage")

    def _storage_type(self, disk_id: str) -> str:
        disk = self.registry.disks.get(key(disk_id))
        return disk.sku if disk is not None else "Standard_LRS"

    def _disk_size_gb(self, disk_id: str) -> int | None:
        disk = self.registry.disks.get(key(disk_id))
        return None if disk is None else math.ceil(disk.disk_size_bytes / GiB)

    def body(self, vm: VmRecord, *, expand: bool = False) -> dict[str, Any]:
        """The VM as ARM answers it."""
        os_disk: dict[str, Any] = {
            "osType": vm.os_type,
            "name": vm.os_disk_name,
            "createOption": vm.os_disk_create_option,
            "caching": vm.os_disk_caching,
            "managedDisk": {
                "id": vm.os_disk_id,
                "storageAccountType": self._storage_type(vm.os_disk_id),
            },
            "deleteOption": vm.os_disk_delete_option,
        }
        size_gb = self._disk_size_gb(vm.os_disk_id)
        if size_gb is not None:
            os_disk["diskSizeGB"] = size_gb
        storage: dict[str, Any] = {
            "osDisk": os_disk,
            "dataDisks": [
                {
                    "lun": d.lun,
                    "name": d.name,
                    "createOption": d.create_option,
                    "caching": d.caching,
                    "managedDisk": {
                        "id": d.disk_id,
                        "storageAccountType": self._storage_type(d.disk_id),
                    },
                    "deleteOption": d.delete_option,
                    "diskSizeGB": self._disk_size_gb(d.disk_id),
                    "toBeDetached": False,
                }
                for d in sorted(vm.data_disks, key=lambda d: d.lun)
            ],
        }
        if vm.image_reference is not None:
            storage["imageReference"] = dict(vm.image_reference)
        properties: dict[str, Any] = {
            **vm.extra,
            "vmId": vm.vm_uuid,
            "hardwareProfile": {"vmSize": vm.vm_size},
            "storageProfile": storage,
            "networkProfile": {
                "networkInterfaces": [
                    {"id": nic_id, "properties": {"primary": primary}}
                    for nic_id, primary in vm.nics
                ]
            },
            "provisioningState": vm.provisioning_state,
            "timeCreated": iso(vm.time_created),
        }
        if vm.os_profile is not None:
            properties["osProfile"] = dict(vm.os_profile)
        if expand:
            properties["instanceView"] = self.instance_view_body(vm)
        result: dict[str, Any] = {
            "id": vm.id,
            "name": vm.name,
            "type": TYPE,
            "location": vm.location,
            "properties": properties,
        }
        if vm.tags:
            result["tags"] = dict(vm.tags)
        return result

    def instance_view_body(self, vm: VmRecord) -> dict[str, Any]:
        """The VM's instance view (statuses, guest agent, disks)."""
        now = iso(self.clock.now())
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
                for disk in self.registry.disks_of(vm)
            ],
            "statuses": statuses,
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

    # -- read --------------------------------------------------------------------------------

    async def get(self, call: Call, name: str) -> Reply:
        """GET a VM (``$expand=instanceView`` adds the instance view)."""
        vm = self.find(call, name)
        expand = call.query.get("$expand", "").lower() == "instanceview"
        return Reply(200, self.body(vm, expand=expand))

    async def instance_view(self, call: Call, name: str) -> Reply:
        """GET .../instanceView."""
        return Reply(200, self.instance_view_body(self.find(call, name)))

    async def list_all(self, call: Call) -> Reply:
        """List VMs of a resource group or subscription."""
        prefix = scope_prefix(call)
        items = [self.body(v) for k, v in self.registry.vms.items() if k.startswith(prefix)]
        return Reply(200, {"value": items})

    # -- create ------------------------------------------------------------------------------

    async def put(self, call: Call, name: str) -> Reply:
        """PUT a VM: create it, or update an existing one."""
        body = await call.json()
        existing = self.registry.vms.get(key(self._vm_id(call, name)))
        if existing is not None:
            return await self._update(call, existing, body, patch=False)
        return await self._create(call, name, body)

    async def _create(self, call: Call, name: str, body: Mapping[str, Any]) -> Reply:
        assert call.resource_group is not None
        location = location_of(body)
        props = body.get("properties") or {}
        hardware = required(props, "hardwareProfile", "hardwareProfile")
        vm_size = str(required(hardware, "vmSize", "hardwareProfile.vmSize"))
        storage = required(props, "storageProfile", "storageProfile")
        image = storage.get("imageReference")
        os_spec = storage.get("osDisk") or ({"createOption": "FromImage"} if image else None)
        if os_spec is None:
            raise missing_parameter("storageProfile.osDisk")
        option = _lower_choice(
            required(os_spec, "createOption", "storageProfile.osDisk.createOption"),
            ("Attach", "FromImage"),
            "storageProfile.osDisk.createOption",
        )
        vm_id = self._vm_id(call, name)
        network = props.get("networkProfile")
        nics = self._parse_nics(network, vm_id)
        os_profile = props.get("osProfile")
        created: list[DiskRecord] = []
        if option == "Attach":
            if os_profile is not None:
                raise invalid_parameter("osProfile", "Parameter 'osProfile' is not allowed.")
            managed = os_spec.get("managedDisk") or {}
            disk = self._disk(str(required(managed, "id", "storageProfile.osDisk.managedDisk.id")))
            self._check_attachable(disk, vm_id)
            requested_os = os_spec.get("osType")
            if disk.os_type is None and requested_os is None:
                raise missing_parameter("storageProfile.osDisk.osType")
            os_type = _lower_choice(
                disk.os_type or requested_os, ("Windows", "Linux"), "storageProfile.osDisk.osType"
            )
            if requested_os is not None and str(requested_os).lower() != os_type.lower():
                raise invalid_parameter(
                    "storageProfile.osDisk.osType",
                    f"The osType '{requested_os}' does not match the OS type '{os_type}' of "
                    f"disk '{disk.name}'.",
                )
            generation = disk.hyper_v_generation or "V1"
            os_disk = disk
            image_reference = None
        else:
            if image is None:
                raise missing_parameter("storageProfile.imageReference")
            if image.get("id"):
                raise invalid_parameter(
                    "storageProfile.imageReference.id",
                    "Custom and gallery images are not simulated: use a marketplace image "
                    "(publisher, offer, sku, version).",
                )
            urn = [
                str(required(image, part, f"storageProfile.imageReference.{part}"))
                for part in ("publisher", "offer", "sku", "version")
            ]
            if os_profile is None:
                raise missing_parameter("osProfile")
            required(os_profile, "adminUsername", "osProfile.adminUsername")
            windows = "windows" in (urn[0] + urn[1]).lower()
            os_type = _lower_choice(
                os_spec.get("osType") or ("Windows" if windows else "Linux"),
                ("Windows", "Linux"),
                "storageProfile.osDisk.osType",
            )
            generation = "V2" if _gen2_image(urn[2]) else "V1"
            image_reference = {
                "publisher": urn[0],
                "offer": urn[1],
                "sku": urn[2],
                "version": urn[3],
                "exactVersion": urn[3] if urn[3].lower() != "latest" else "1.0.20250101",
            }
            os_disk = self._implicit_os_disk(
                call, name, os_spec, location, os_type, generation, urn
            )
            created.append(os_disk)
        if generation not in _size_generations(vm_size):
            raise ArmError(
                400,
                "BadRequest",
                f"The selected VM size '{vm_size}' cannot boot Hypervisor Generation "
                f"'{generation[1:]}'. If this was a Create operation please check that the "
                "Hypervisor Generation of the Image matches the Hypervisor Generation of the "
                "selected VM Size. If this was an Update operation please select a Hypervisor "
                f"Generation '{generation[1:]}' VM Size. For more information, see "
                "https://aka.ms/azuregen2vm",
            )
        data_disks, new_disks = self._parse_data_disks(
            call,
            name,
            storage.get("dataDisks") or [],
            vm_id,
            location,
            current=(),
            os_disk_id=os_disk.id,
        )
        created.extend(new_disks)
        vm = VmRecord(
            id=vm_id,
            name=name,
            subscription=call.subscription,
            resource_group=call.resource_group,
            location=location,
            tags=tags_of(body),
            vm_uuid=str(uuid.uuid4()),
            vm_size=vm_size,
            os_type=os_type,
            hyper_v_generation=generation,
            os_disk_id=os_disk.id,
            os_disk_name=str(os_spec.get("name") or os_disk.name),
            os_disk_create_option=option,
            os_disk_caching=str(os_spec.get("caching") or "ReadWrite"),
            os_disk_delete_option=str(os_spec.get("deleteOption") or "Detach"),
            image_reference=image_reference,
            os_profile=_sanitise_os_profile(os_profile),
            data_disks=data_disks,
            nics=nics,
            time_created=self.clock.now(),
            extra={k: v for k, v in props.items() if k not in _MODELLED},
        )
        # Everything is valid: take the disks and NICs now, so that racing requests see them.
        for disk in created:
            self.registry.disks[key(disk.id)] = disk
        for disk_id in [vm.os_disk_id, *(d.disk_id for d in data_disks)]:
            self.registry.disks[key(disk_id)].managed_by = vm.id
        for nic_id, _ in nics:
            self.registry.nics[key(nic_id)].vm_id = vm.id
        self.registry.vms[key(vm.id)] = vm
        from_image = option == "FromImage"

        async def run() -> None:
            for disk in created:
                disk.provisioning_state = "Succeeded"
            vm.provisioning_state = "Succeeded"
            vm.power_state = "running"
            self._agent_after_boot(vm, at_once=from_image)

        def rollback(error: ArmError) -> None:
            vm.provisioning_state = "Failed"
            vm.power_state = "stopped"
            for disk in created:
                disk.provisioning_state = "Succeeded"

        operation = self.core.begin(
            call,
            name="virtualMachines/write",
            resource_id=vm.id,
            location=location,
            provider="compute",
            run=run,
            rollback=rollback,
            delay=self.clock.duration("virtualMachines/create"),
        )
        vm.pending = operation
        return Reply(201, self.body(vm), self.core.lro_headers(call, operation, location=False))

    def _agent_after_boot(self, vm: VmRecord, *, at_once: bool = False) -> None:
        if not self.agent_capable(vm):
            vm.agent_ready_at = None
            return
        delay = 0.0 if at_once else self.clock.duration("virtualMachines/agentReady")
        vm.agent_ready_at = self.clock.monotonic() + delay
        self.core.notify()

    def _implicit_os_disk(
        self,
        call: Call,
        vm_name: str,
        os_spec: Mapping[str, Any],
        location: str,
        os_type: str,
        generation: str,
        urn: list[str],
    ) -> DiskRecord:
        assert call.resource_group is not None
        name = str(os_spec.get("name") or f"{vm_name}_OsDisk_1_{uuid.uuid4().hex}")
        disk_id = arm_id(call.subscription, call.resource_group, "Microsoft.Compute", "disks", name)
        if key(disk_id) in self.registry.disks:
            raise ArmError(
                409,
                "Conflict",
                f"Disk {name} already exists in resource group {call.resource_group.upper()}. "
                "Only CreateOption.Attach is supported.",
            )
        size_gb = os_spec.get("diskSizeGB") or (127 if os_type == "Windows" else 30)
        storage_type = (os_spec.get("managedDisk") or {}).get(
            "storageAccountType"
        ) or "Standard_LRS"
        image_id = (
            f"/Subscriptions/{call.subscription}/Providers/Microsoft.Compute/Locations/"
            f"{location.replace(' ', '').lower()}/Publishers/{urn[0]}/ArtifactTypes/VMImage/"
            f"Offers/{urn[1]}/Skus/{urn[2]}/Versions/{urn[3]}"
        )
        return DiskRecord(
            id=disk_id,
            name=name,
            subscription=call.subscription,
            resource_group=call.resource_group,
            location=location,
            tags={},
            sku=str(storage_type),
            create_option="FromImage",
            disk_size_bytes=int(size_gb) * GiB,
            hyper_v_generation=generation,
            os_type=os_type,
            unique_id=str(uuid.uuid4()),
            time_created=self.clock.now(),
            image_reference={"id": image_id},
        )

    def _check_attachable(self, disk: DiskRecord, vm_id: str) -> None:
        if disk.managed_by is not None and key(disk.managed_by) != key(vm_id):
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Disk '{disk.id}' cannot be attached as the disk is already owned by VM "
                f"'{disk.managed_by}'.",
            )
        if disk.busy:
            raise concurrent_conflict()
        state = self.registry.disk_state(disk)
        if state in ("ReadyToUpload", "ActiveUpload", "ActiveSAS"):
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Disk '{disk.id}' cannot be attached because it is in state '{state}'. "
                "Complete the upload or revoke access (EndGetAccess) first.",
            )
        if disk.provisioning_state == "Failed":
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Disk '{disk.id}' cannot be attached because its provisioning failed.",
            )

    def _parse_nics(self, network: Any, vm_id: str) -> list[tuple[str, bool]]:
        if not isinstance(network, Mapping):
            raise missing_parameter("networkProfile")
        entries = network.get("networkInterfaces") or []
        if not entries:
            raise missing_parameter("networkProfile.networkInterfaces")
        nics: list[tuple[str, bool]] = []
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            nic_id = str(required(entry, "id", f"networkProfile.networkInterfaces[{index}].id"))
            nic = self.registry.nics.get(key(nic_id))
            if nic is None:
                raise ArmError(404, "NotFound", f"Resource {nic_id} not found.")
            if key(nic_id) in seen:
                raise invalid_parameter(
                    "networkProfile.networkInterfaces",
                    f"Network interface {nic_id} is referenced more than once.",
                )
            seen.add(key(nic_id))
            if nic.vm_id is not None and key(nic.vm_id) != key(vm_id):
                raise ArmError(
                    400,
                    "NicInUse",
                    f"Network Interface {nic.id} is used by existing resource {nic.vm_id}. In "
                    "order to use it, it must be dissociated from that resource.",
                )
            primary = bool((entry.get("properties") or {}).get("primary", len(entries) == 1))
            nics.append((nic.id, primary))
        if len(nics) > 1 and sum(primary for _, primary in nics) != 1:
            raise invalid_parameter(
                "networkProfile.networkInterfaces",
                "Virtual machine must have exactly one network interface set as primary.",
            )
        if len(nics) == 1:
            nics = [(nics[0][0], True)]
        return nics

    def _parse_data_disks(
        self,
        call: Call,
        vm_name: str,
        entries: Any,
        vm_id: str,
        location: str,
        *,
        current: tuple[DataDisk, ...],
        os_disk_id: str,
    ) -> tuple[list[DataDisk], list[DiskRecord]]:
        """The data disks a request asks for (detached ones left out), and disks to create."""
        assert call.resource_group is not None
        if not isinstance(entries, list):
            raise invalid_parameter("storageProfile.dataDisks", "dataDisks must be a list.")
        attached = {key(d.disk_id): d for d in current}
        result: list[DataDisk] = []
        created: list[DiskRecord] = []
        luns: set[int] = set()
        disk_ids: set[str] = set()
        for index, entry in enumerate(entries):
            path = f"storageProfile.dataDisks[{index}]"
            if entry.get("toBeDetached"):
                continue
            lun_value = required(entry, "lun", f"{path}.lun")
            if isinstance(lun_value, bool) or not isinstance(lun_value, int):
                raise invalid_parameter(
                    f"{path}.lun", f"The value '{lun_value}' of LUN is not valid."
                )
            lun = int(lun_value)
            if not 0 <= lun <= MAX_LUN:
                raise invalid_parameter(
                    f"{path}.lun", f"The LUN {lun} is not between 0 and {MAX_LUN}."
                )
            if lun in luns:
                raise invalid_parameter(f"{path}.lun", f"A disk at LUN {lun} already exists.")
            luns.add(lun)
            option = _lower_choice(
                required(entry, "createOption", f"{path}.createOption"),
                ("Attach", "Empty"),
                f"{path}.createOption",
            )
            caching = str(entry.get("caching") or "None")
            delete_option = str(entry.get("deleteOption") or "Detach")
            managed = entry.get("managedDisk") or {}
            if option == "Attach" or managed.get("id"):
                disk = self._disk(str(required(managed, "id", f"{path}.managedDisk.id")))
                if key(disk.id) not in attached:
                    self._check_attachable(disk, vm_id)
                if key(disk.id) in disk_ids or key(disk.id) == key(os_disk_id):
                    raise invalid_parameter(
                        f"{path}.managedDisk.id", f"Disk '{disk.id}' is referenced more than once."
                    )
                disk_ids.add(key(disk.id))
                previous = attached.get(key(disk.id))
                result.append(
                    DataDisk(
                        lun=lun,
                        disk_id=disk.id,
                        name=str(entry.get("name") or disk.name),
                        create_option=previous.create_option if previous else "Attach",
                        caching=caching,
                        delete_option=delete_option,
                    )
                )
                continue
            size_gb = required(entry, "diskSizeGB", f"{path}.diskSizeGB")
            name = str(entry.get("name") or f"{vm_name}_DataDisk_{lun}_{uuid.uuid4().hex}")
            disk_id = arm_id(
                call.subscription, call.resource_group, "Microsoft.Compute", "disks", name
            )
            if key(disk_id) in self.registry.disks:
                raise ArmError(
                    409,
                    "Conflict",
                    f"Disk {name} already exists in resource group "
                    f"{call.resource_group.upper()}. Only CreateOption.Attach is supported.",
                )
            storage_type = str(managed.get("storageAccountType") or "Standard_LRS")
            created.append(
                DiskRecord(
                    id=disk_id,
                    name=name,
                    subscription=call.subscription,
                    resource_group=call.resource_group,
                    location=location,
                    tags={},
                    sku=storage_type,
                    create_option="Empty",
                    disk_size_bytes=int(size_gb) * GiB,
                    hyper_v_generation=None,
                    os_type=None,
                    unique_id=str(uuid.uuid4()),
                    time_created=self.clock.now(),
                )
            )
            result.append(
                DataDisk(
                    lun=lun,
                    disk_id=disk_id,
                    name=name,
                    create_option="Empty",
                    caching=caching,
                    delete_option=delete_option,
                )
            )
        return result, created

    # -- update ------------------------------------------------------------------------------

    async def patch(self, call: Call, name: str) -> Reply:
        """PATCH a VM."""
        vm = self.find(call, name)
        return await self._update(call, vm, await call.json(), patch=True)

    async def _update(
        self, call: Call, vm: VmRecord, body: Mapping[str, Any], *, patch: bool
    ) -> Reply:
        self._refuse_if_busy(vm, "Update VM")
        props: Mapping[str, Any] = body.get("properties") or {}
        if not patch:
            location_of(body)
        hardware = props.get("hardwareProfile") or {}
        vm_size = str(hardware.get("vmSize") or vm.vm_size)
        if vm.hyper_v_generation not in _size_generations(vm_size):
            raise ArmError(
                400,
                "BadRequest",
                f"The selected VM size '{vm_size}' cannot boot Hypervisor Generation "
                f"'{vm.hyper_v_generation[1:]}'. If this was an Update operation please select "
                f"a Hypervisor Generation '{vm.hyper_v_generation[1:]}' VM Size. For more "
                "information, see https://aka.ms/azuregen2vm",
            )
        storage = props.get("storageProfile") or {}
        current = tuple(vm.data_disks)
        if "dataDisks" in storage or not patch:
            data_disks, created = self._parse_data_disks(
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
        swap_to: DiskRecord | None = None
        os_spec = storage.get("osDisk") or {}
        new_os_id = (os_spec.get("managedDisk") or {}).get("id")
        if new_os_id and key(str(new_os_id)) != key(vm.os_disk_id):
            swap_to = self._disk(str(new_os_id))
            if vm.power_state != "deallocated":
                raise ArmError(
                    409,
                    "OperationNotAllowed",
                    "Swapping the OS disk is only allowed when the VM is stopped (deallocated).",
                )
            self._check_attachable(swap_to, vm.id)
            if (swap_to.hyper_v_generation or "V1") != vm.hyper_v_generation:
                raise ArmError(
                    400,
                    "BadRequest",
                    "Swapping OS Disk is not supported since HyperVisor property on the OSDisk "
                    "and VM do not match. Please make sure the HyperVisor property on the "
                    f"OSDisk is HyperVisor Generation '{vm.hyper_v_generation}'",
                )
        nics = vm.nics
        network = props.get("networkProfile")
        if network is not None:
            nics = self._parse_nics(network, vm.id)
            if {key(n) for n, _ in nics} != {key(n) for n, _ in vm.nics} and (
                vm.power_state != "deallocated"
            ):
                raise ArmError(
                    409,
                    "OperationNotAllowed",
                    "Network interfaces can only be added or removed while the VM is "
                    "stopped (deallocated).",
                )
        tags = tags_of(body) if (not patch or "tags" in body) else vm.tags
        # Claim new disks now; release the dropped ones when the update completes.
        kept = {key(d.disk_id) for d in data_disks}
        dropped = [d for d in current if key(d.disk_id) not in kept]
        claimed: list[DiskRecord] = []
        for disk in created:
            self.registry.disks[key(disk.id)] = disk
        for data_disk in data_disks:
            disk = self.registry.disks[key(data_disk.disk_id)]
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
                gone = self.registry.disks.get(key(data_disk.disk_id))
                if (
                    gone is not None
                    and gone.managed_by is not None
                    and key(gone.managed_by) == key(vm.id)
                ):
                    gone.managed_by = None
            if swap_to is not None:
                old = self.registry.disks.get(key(old_os_id))
                if old is not None:
                    old.managed_by = None
                vm.os_disk_id = swap_to.id
                vm.os_disk_name = swap_to.name
                vm.os_type = swap_to.os_type or vm.os_type
            for nic_id, _ in vm.nics:
                nic = self.registry.nics.get(key(nic_id))
                if nic is not None:
                    nic.vm_id = None
            for nic_id, _ in nics:
                self.registry.nics[key(nic_id)].vm_id = vm.id
            vm.nics = list(nics)
            vm.data_disks = list(data_disks)
            vm.vm_size = vm_size
            vm.tags = dict(tags)
            for name, value in props.items():
                if name not in _MODELLED:
                    vm.extra[name] = value
            vm.provisioning_state = "Succeeded"

        def rollback(error: ArmError) -> None:
            for disk in claimed:
                disk.managed_by = None
            for disk in created:
                self.registry.disks.pop(key(disk.id), None)
            vm.provisioning_state = "Failed"

        operation = self.core.begin(
            call,
            name="virtualMachines/update" if patch else "virtualMachines/write",
            resource_id=vm.id,
            location=vm.location,
            provider="compute",
            run=run,
            rollback=rollback,
        )
        vm.pending = operation
        reply = self.body(vm)
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
        return Reply(200, reply, self.core.lro_headers(call, operation, location=False))

    # -- power -------------------------------------------------------------------------------

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

        operation = self.core.begin(
            call,
            name=name,
            resource_id=vm.id,
            location=vm.location,
            provider="compute",
            run=run,
            rollback=rollback,
        )
        vm.pending = operation
        return self.core.accepted(call, operation)

    async def start(self, call: Call, name: str) -> Reply:
        """POST start."""
        vm = self.find(call, name)
        self._refuse_if_busy(vm, "Start VM")
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
            after=lambda: self._agent_after_boot(vm),
        )

    async def power_off(self, call: Call, name: str) -> Reply:
        """POST powerOff."""
        vm = self.find(call, name)
        self._refuse_if_busy(vm, "Power off VM")
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
        self._refuse_if_busy(vm, "Deallocate VM")
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
        self._refuse_if_busy(vm, "Restart VM")
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
            after=lambda: self._agent_after_boot(vm),
        )

    # -- delete ------------------------------------------------------------------------------

    async def delete(self, call: Call, name: str) -> Reply:
        """DELETE a VM: its disks detach (or go, with deleteOption Delete)."""
        vm = self.registry.vms.get(key(self._vm_id(call, name)))
        if vm is None:
            return Reply(204)
        if vm.deleting and vm.pending is not None and vm.pending.running:
            return self.core.accepted(call, vm.pending)
        self._refuse_if_busy(vm, "Delete VM")
        vm.deleting = True
        vm.provisioning_state = "Deleting"
        previous_power = vm.power_state
        vm.power_state = "deallocating"
        vm.agent_ready_at = None

        async def run() -> None:
            delete_options = {key(vm.os_disk_id): vm.os_disk_delete_option}
            delete_options.update({key(d.disk_id): d.delete_option for d in vm.data_disks})
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
                nic = self.registry.nics.get(key(nic_id))
                if nic is not None:
                    nic.vm_id = None
            self.registry.vms.pop(key(vm.id), None)

        def rollback(error: ArmError) -> None:
            vm.deleting = False
            vm.power_state = previous_power
            vm.provisioning_state = "Failed"

        operation = self.core.begin(
            call,
            name="virtualMachines/delete",
            resource_id=vm.id,
            location=vm.location,
            provider="compute",
            run=run,
            rollback=rollback,
        )
        vm.pending = operation
        return self.core.accepted(call, operation)

    # -- run command -------------------------------------------------------------------------

    async def run_command(self, call: Call, name: str) -> Reply:
        """POST runCommand: run a script through the guest agent (one at a time per VM)."""
        vm = self.find(call, name)
        body = await call.json()
        allowed = WINDOWS_COMMANDS if vm.os_type == "Windows" else LINUX_COMMANDS
        requested = str(required(body, "commandId", "commandId"))
        command_id = next((c for c in allowed if c.lower() == requested.lower()), None)
        if command_id is None:
            raise invalid_parameter(
                "commandId",
                f"The command id '{requested}' is not valid for a {vm.os_type} VM. Valid "
                f"command ids: {', '.join(allowed)}.",
            )
        script = body.get("script") or []
        if not isinstance(script, list) or not all(isinstance(line, str) for line in script):
            raise invalid_parameter("script", "script must be a list of strings.")
        parameters: list[tuple[str, str]] = []
        for index, parameter in enumerate(body.get("parameters") or []):
            parameters.append(
                (
                    str(required(parameter, "name", f"parameters[{index}].name")),
                    str(parameter.get("value", "")),
                )
            )
        if vm.deleting:
            raise ArmError(
                409,
                "OperationNotAllowed",
                _MARKED_FOR_DELETION.format(op="Run command", name=vm.name),
            )
        if vm.power_state not in ("running", "starting"):
            raise ArmError(
                409,
                "OperationNotAllowed",
                "The operation requires the VM to be running (or set to run).",
            )
        if vm.run_command is not None and vm.run_command.running:
            raise ArmError(
                409,
                "Conflict",
                "Run command extension execution is in progress. Please wait for completion "
                "before invoking a run command.",
            )
        invocation = RunCommandInvocation(
            vm_id=vm.id,
            vm_name=vm.name,
            os_type=vm.os_type,
            command_id=command_id,
            script=tuple(script),
            parameters=tuple(parameters),
            os_disk_id=vm.os_disk_id,
            data_disk_ids=tuple(d.disk_id for d in vm.data_disks),
        )
        holder: list[RunCommandRecord] = []

        async def run() -> dict[str, Any]:
            record = holder[0]
            await self._wait_for_agent(vm)
            rule = self.core.pick_run_command_rule(lambda r: r.matches(invocation))
            outcome = rule.result(invocation) if rule is not None else RunCommandOutcome()
            if rule is not None and rule.duration is not None:
                await anyio.sleep(self.clock.scale(rule.duration))
            else:
                await anyio.sleep(self.clock.duration("virtualMachines/runCommand"))
            stdout, stderr = _truncate(outcome.stdout), _truncate(outcome.stderr)
            record.stdout, record.stderr, record.exit_code = stdout, stderr, outcome.exit_code
            if outcome.error_code is not None:
                raise ArmError(409, outcome.error_code, outcome.error_message or outcome.error_code)
            linux = vm.os_type != "Windows"
            if linux and outcome.exit_code != 0:
                raise ArmError(
                    409,
                    "VMExtensionProvisioningError",
                    "VM has reported a failure when processing extension 'RunCommandLinux'. "
                    'Error message: "Enable failed: failed to execute command: command '
                    f"terminated with exit status={outcome.exit_code}\n[stdout]\n{stdout}\n"
                    f'[stderr]\n{stderr}\n".',
                )
            if outcome.prepares:
                record.prepared_disks = self._mark_prepared(vm, record)
            return _run_command_result(linux, stdout, stderr)

        operation = self.core.begin(
            call,
            name="virtualMachines/runCommand",
            resource_id=vm.id,
            location=vm.location,
            provider="compute",
            run=run,
            delay=0.0,
            has_output=True,
        )
        record = RunCommandRecord(
            operation=operation,
            vm_id=vm.id,
            command_id=command_id,
            script=tuple(script),
            parameters=tuple(parameters),
        )
        holder.append(record)
        self.registry.run_commands.append(record)
        vm.run_command = operation
        return self.core.accepted(call, operation)

    async def _wait_for_agent(self, vm: VmRecord) -> None:
        """Wait until the guest agent is Ready, or fail as Azure does when it never reports."""
        deadline = self.clock.monotonic() + self.clock.duration("virtualMachines/agentTimeout")
        while vm.agent_status() != "Ready":
            now = self.clock.monotonic()
            if now >= deadline or key(vm.id) not in self.registry.vms:
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
                await self.core.changed.wait()

    def _mark_prepared(self, vm: VmRecord, record: RunCommandRecord) -> tuple[str, ...]:
        marked: list[str] = []
        for data_disk in vm.data_disks:
            disk = self.registry.disks.get(key(data_disk.disk_id))
            if disk is None:
                continue
            disk.prepared = PreparedMark(
                vm_id=vm.id,
                command_id=record.command_id,
                script=record.script,
                parameters=record.parameters,
                operation_id=record.operation.id,
                time=self.clock.now(),
            )
            marked.append(disk.id)
        return tuple(marked)


def _run_command_result(linux: bool, stdout: str, stderr: str) -> dict[str, Any]:
    """Azure's RunCommandResult: one Linux status with both streams, or two Windows ones."""
    if linux:
        return {
            "value": [
                {
                    "code": "ProvisioningState/succeeded",
                    "level": "Info",
                    "displayStatus": "Provisioning succeeded",
                    "message": f"Enable succeeded: \n[stdout]\n{stdout}\n[stderr]\n{stderr}",
                }
            ]
        }
    return {
        "value": [
            {
                "code": "ComponentStatus/StdOut/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
                "message": stdout,
            },
            {
                "code": "ComponentStatus/StdErr/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
                "message": stderr,
            },
        ]
    }


def _sanitise_os_profile(os_profile: Any) -> dict[str, Any] | None:
    """The osProfile as Azure echoes it: never the password or custom data."""
    if not isinstance(os_profile, Mapping):
        return None
    profile = {k: v for k, v in os_profile.items() if k not in ("adminPassword", "customData")}
    profile.setdefault("secrets", [])
    profile.setdefault("allowExtensionOperations", True)
    profile.setdefault("requireGuestProvisionSignal", True)
    return profile


def _method_not_allowed(method: str) -> ArmError:
    return ArmError(
        405, "MethodNotAllowed", f"The requested method {method} is not allowed on this resource."
    )
