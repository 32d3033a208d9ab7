"""Virtual machines on Resource Manager: read one with its instance view, start and
deallocate it, attach and detach data disks, create one from restored disks or a helper
appliance from a marketplace image, wait for its VM agent."""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from azure.mgmt.compute.models import VirtualMachine

from ..errors import ControlPlaneError
from .arm import arm_call, lro
from .mgmtclients import ManagementClients
from .networking import Networking
from .resource_id import ResourceId


@dataclass(frozen=True, slots=True)
class VmInfo:
    id: str
    location: str
    power_state: str | None
    provisioning_state: str | None
    agent_status: str | None
    os_disk_id: str | None
    data_disks: Mapping[int, str]
    tags: Mapping[str, str]
    #: the VM size (``hardwareProfile.vmSize``), empty when Azure did not say
    size: str = ""


def security_profile(*, secure_boot: bool, vtpm: bool) -> dict[str, Any]:
    """A Trusted Launch VM's ``securityProfile`` (REST shape)."""
    return {
        "securityType": "TrustedLaunch",
        "uefiSettings": {"secureBootEnabled": secure_boot, "vTpmEnabled": vtpm},
    }


def _status(statuses: Any, prefix: str) -> str | None:
    for status in statuses or ():
        code = status.get("code", "") if isinstance(status, Mapping) else ""
        if code.startswith(prefix):
            return str(code[len(prefix) :])
    return None


class VirtualMachines:
    """The VM operations of a restore, through ``clients``, with one update lock per VM:
    Azure answers 409 to concurrent updates of one VM, so they are serialised here.
    ``networking`` gives appliances their NIC."""

    def __init__(self, clients: ManagementClients, networking: Networking) -> None:
        self._clients = clients
        self._networking = networking
        self._locks: defaultdict[str, anyio.Lock] = defaultdict(anyio.Lock)

    async def get(self, vm_id: str) -> VmInfo | None:
        """The VM and its instance view, or None when it does not exist."""
        rid = ResourceId.parse(vm_id, expected="Microsoft.Compute/virtualMachines")
        vms = (await self._clients.compute(rid.subscription)).virtual_machines
        try:
            vm = await arm_call(
                f"get VM {rid.name}", vms.get(rid.resource_group, rid.name, expand="instanceView")
            )
        except ControlPlaneError as exc:
            if exc.status == 404:
                return None
            raise
        body = vm.as_dict()
        props = body.get("properties", {})
        storage = props.get("storageProfile", {})
        view = props.get("instanceView", {})
        agent = view.get("vmAgent", {})
        agent_statuses = agent.get("statuses") or []
        return VmInfo(
            id=str(body.get("id") or rid),
            location=str(body.get("location", "")),
            power_state=_status(view.get("statuses"), "PowerState/"),
            provisioning_state=props.get("provisioningState"),
            agent_status=agent_statuses[0].get("displayStatus") if agent_statuses else None,
            os_disk_id=(storage.get("osDisk", {}).get("managedDisk") or {}).get("id"),
            data_disks={
                int(d["lun"]): str((d.get("managedDisk") or {}).get("id", ""))
                for d in storage.get("dataDisks") or []
            },
            tags=dict(body.get("tags") or {}),
            size=str((props.get("hardwareProfile") or {}).get("vmSize") or ""),
        )

    async def _action(self, vm_id: str, action: str) -> None:
        rid = ResourceId.parse(vm_id, expected="Microsoft.Compute/virtualMachines")
        vms = (await self._clients.compute(rid.subscription)).virtual_machines
        begin = {
            "start": vms.begin_start,
            "deallocate": vms.begin_deallocate,
        }[action]
        async with self._locks[vm_id.lower()]:
            await lro(f"{action} VM {rid.name}", begin(rid.resource_group, rid.name))

    async def start(self, vm_id: str) -> None:
        await self._action(vm_id, "start")

    async def deallocate(self, vm_id: str) -> None:
        await self._action(vm_id, "deallocate")

    async def set_data_disks(
        self, vm_id: str, *, attach: Mapping[int, str] = {}, detach: tuple[str, ...] = ()
    ) -> None:
        """Attach disks at LUNs and detach disks by id, in one VM update (serialised)."""
        rid = ResourceId.parse(vm_id, expected="Microsoft.Compute/virtualMachines")
        vms = (await self._clients.compute(rid.subscription)).virtual_machines
        gone = {disk.lower() for disk in detach}
        async with self._locks[vm_id.lower()]:
            vm = await arm_call(f"get VM {rid.name}", vms.get(rid.resource_group, rid.name))
            body = vm.as_dict(exclude_readonly=True)
            storage = body.setdefault("properties", {}).setdefault("storageProfile", {})
            disks = [
                d
                for d in storage.get("dataDisks") or []
                if str((d.get("managedDisk") or {}).get("id", "")).lower() not in gone
            ]
            present = {str((d.get("managedDisk") or {}).get("id", "")).lower() for d in disks}
            used = {int(d["lun"]) for d in disks}
            for lun, disk_id in attach.items():
                if disk_id.lower() in present:
                    continue
                if lun in used:
                    raise ControlPlaneError(f"VM {rid.name}: LUN {lun} is already in use")
                disks.append({"lun": lun, "createOption": "Attach", "managedDisk": {"id": disk_id}})
            storage["dataDisks"] = disks
            await lro(
                f"update disks of VM {rid.name}",
                vms.begin_create_or_update(rid.resource_group, rid.name, VirtualMachine(body)),
            )

    async def create(
        self,
        vm_id: str,
        *,
        location: str,
        size: str,
        os_disk_id: str,
        os_type: str,
        data_disks: Mapping[int, str],
        nic_id: str,
        tags: Mapping[str, str] | None = None,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        """Register a VM from existing managed disks (createOption Attach); Azure starts it.
        ``security`` is its ``securityProfile`` (see :func:`security_profile`)."""
        rid = ResourceId.parse(vm_id, expected="Microsoft.Compute/virtualMachines")
        body: dict[str, Any] = {
            "location": location,
            "tags": dict(tags or {}),
            "properties": {
                "hardwareProfile": {"vmSize": size},
                "storageProfile": {
                    "osDisk": {
                        "osType": os_type,
                        "createOption": "Attach",
                        "managedDisk": {"id": os_disk_id},
                    },
                    "dataDisks": [
                        {"lun": lun, "createOption": "Attach", "managedDisk": {"id": disk}}
                        for lun, disk in sorted(data_disks.items())
                    ],
                },
                "networkProfile": {"networkInterfaces": [{"id": nic_id}]},
                "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
            },
        }
        if security:
            body["properties"]["securityProfile"] = dict(security)
        await self._create_or_update(vm_id, rid, body)

    async def create_appliance(
        self,
        vm_id: str,
        *,
        location: str,
        size: str,
        image: Mapping[str, str],
        subnet_id: str,
        os_type: str,
        delete_with_vm: bool = False,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Create a VM from a marketplace image (as helper appliances and proxies are),
        with a NIC in ``subnet_id``; Azure starts it. Its admin password is random and
        not kept: the appliance is driven by Run Command only. ``delete_with_vm``: its
        OS disk and NIC go when the VM is deleted (``deleteOption: Delete``)."""
        rid = ResourceId.parse(vm_id, expected="Microsoft.Compute/virtualMachines")
        nic_id = (
            f"/subscriptions/{rid.subscription}/resourceGroups/{rid.resource_group}"
            f"/providers/Microsoft.Network/networkInterfaces/{rid.name}-nic"
        )
        await self._networking.ensure_nic(nic_id, subnet_id=subnet_id, location=location)
        option = "Delete" if delete_with_vm else "Detach"
        body: dict[str, Any] = {
            "location": location,
            "tags": dict(tags or {}),
            "properties": {
                "hardwareProfile": {"vmSize": size},
                "storageProfile": {
                    "imageReference": dict(image),
                    "osDisk": {
                        "createOption": "FromImage",
                        "osType": os_type,
                        "deleteOption": option,
                    },
                },
                "osProfile": {
                    "computerName": rid.name[:15],
                    "adminUsername": "azrestore",
                    "adminPassword": secrets.token_urlsafe(24) + "aA1!",
                },
                "networkProfile": {
                    "networkInterfaces": [
                        {"id": nic_id, "properties": {"primary": True, "deleteOption": option}}
                    ]
                },
            },
        }
        await self._create_or_update(vm_id, rid, body)

    async def delete(self, vm_id: str) -> None:
        """Delete the VM (what has ``deleteOption: Delete`` goes with it); a VM that does
        not exist is no error."""
        rid = ResourceId.parse(vm_id, expected="Microsoft.Compute/virtualMachines")
        vms = (await self._clients.compute(rid.subscription)).virtual_machines
        async with self._locks[vm_id.lower()]:
            try:
                await lro(f"delete VM {rid.name}", vms.begin_delete(rid.resource_group, rid.name))
            except ControlPlaneError as exc:
                if exc.status != 404:
                    raise

    async def _create_or_update(self, vm_id: str, rid: ResourceId, body: dict[str, Any]) -> None:
        vms = (await self._clients.compute(rid.subscription)).virtual_machines
        async with self._locks[vm_id.lower()]:
            await lro(
                f"create VM {rid.name}",
                vms.begin_create_or_update(rid.resource_group, rid.name, VirtualMachine(body)),
            )

    async def wait_agent_ready(self, vm_id: str, *, within: float, interval: float) -> str:
        """Poll the instance view until the VM agent reports Ready; returns its status.
        Raises ControlPlaneError after ``within`` seconds with the last status seen."""
        deadline = time.monotonic() + within
        status: str | None = None
        while True:
            info = await self.get(vm_id)
            status = info.agent_status if info else None
            if status == "Ready":
                return status
            if time.monotonic() >= deadline:
                raise ControlPlaneError(
                    f"VM {vm_id}: the Azure VM agent did not report Ready within {within:g} s"
                    f" (last status: {status or 'none'})",
                    code="VMAgentNotReady",
                )
            await anyio.sleep(interval)
