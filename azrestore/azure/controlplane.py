"""The control-plane operations a restore needs (disks, VMs, NICs, run command), over the
real azure-mgmt-compute and azure-mgmt-network aio clients, with errors translated once.

Request bodies are Resource Manager's JSON shapes (``{"location": ..., "properties": ...}``),
which the SDK accepts as they are; answers are reduced to small typed records.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from azure.mgmt.compute.models import Disk, GrantAccessData, RunCommandInput, VirtualMachine
from azure.mgmt.network.models import NetworkInterface, VirtualNetwork

from ..errors import ControlPlaneError
from .arm import ArmSettings, arm_call, lro
from .resource_id import ResourceId

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.mgmt.compute.aio import ComputeManagementClient
    from azure.mgmt.network.aio import NetworkManagementClient

_Client = TypeVar("_Client", "ComputeManagementClient", "NetworkManagementClient")


@dataclass(frozen=True, slots=True)
class DiskInfo:
    id: str
    state: str
    size_bytes: int | None
    os_type: str | None
    hyper_v_generation: str | None
    managed_by: str | None
    tags: Mapping[str, str]


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


@dataclass(frozen=True, slots=True)
class RunCommandOutput:
    stdout: str
    stderr: str
    statuses: tuple[str, ...]


def _status(statuses: Any, prefix: str) -> str | None:
    for status in statuses or ():
        code = status.get("code", "") if isinstance(status, Mapping) else ""
        if code.startswith(prefix):
            return str(code[len(prefix) :])
    return None


@dataclass
class ControlPlane:
    """Clients per subscription for one run, and one update lock per VM: Azure answers
    409 to concurrent updates of one VM, so attach and detach are serialised here."""

    settings: ArmSettings
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    _credential: AsyncTokenCredential | None = None
    _compute: dict[str, ComputeManagementClient] = field(default_factory=dict)
    _network: dict[str, NetworkManagementClient] = field(default_factory=dict)
    _vm_locks: defaultdict[str, anyio.Lock] = field(default_factory=lambda: defaultdict(anyio.Lock))
    _run_locks: defaultdict[str, anyio.Lock] = field(
        default_factory=lambda: defaultdict(anyio.Lock)
    )

    async def __aenter__(self) -> ControlPlane:
        self._credential = self.settings.credential()
        self._stack.push_async_callback(self._credential.close)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with anyio.CancelScope(shield=True):
            await self._stack.aclose()

    async def compute(self, subscription: str) -> ComputeManagementClient:
        if subscription not in self._compute:
            from azure.mgmt.compute.aio import ComputeManagementClient

            self._compute[subscription] = await self._open(ComputeManagementClient, subscription)
        return self._compute[subscription]

    async def network(self, subscription: str) -> NetworkManagementClient:
        if subscription not in self._network:
            from azure.mgmt.network.aio import NetworkManagementClient

            self._network[subscription] = await self._open(NetworkManagementClient, subscription)
        return self._network[subscription]

    async def _open(self, client_class: type[_Client], subscription: str) -> _Client:
        """A management client for ``subscription``, closed with this control plane."""
        assert self._credential is not None, "use ControlPlane as an async context manager"
        client = client_class(self._credential, subscription, **self.settings.client_kwargs())
        return await self._stack.enter_async_context(client)

    # -- disks --------------------------------------------------------------------------

    async def get_disk(self, disk_id: str) -> DiskInfo | None:
        rid = ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
        disks = (await self.compute(rid.subscription)).disks
        try:
            disk = await arm_call(f"get disk {rid.name}", disks.get(rid.resource_group, rid.name))
        except ControlPlaneError as exc:
            if exc.status == 404:
                return None
            raise
        body = disk.as_dict()
        props = body.get("properties", {})
        return DiskInfo(
            id=str(body.get("id") or rid),
            state=str(props.get("diskState", "")),
            size_bytes=props.get("diskSizeBytes"),
            os_type=props.get("osType"),
            hyper_v_generation=props.get("hyperVGeneration"),
            managed_by=body.get("managedBy"),
            tags=dict(body.get("tags") or {}),
        )

    async def create_upload_disk(
        self,
        disk_id: str,
        *,
        location: str,
        upload_size: int,
        os_type: str | None,
        hyper_v_generation: str,
        sku: str,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Create an empty disk to upload into (createOption Upload: ReadyToUpload)."""
        creation = {"createOption": "Upload", "uploadSizeBytes": upload_size}
        await self._create_disk(
            "create", disk_id, creation, location, os_type, hyper_v_generation, sku, tags
        )

    async def create_import_disk(
        self,
        disk_id: str,
        *,
        location: str,
        source_uri: str,
        storage_account_id: str,
        os_type: str | None,
        hyper_v_generation: str,
        sku: str,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Create a managed disk from a fixed VHD in a page blob (createOption Import)."""
        creation = {
            "createOption": "Import",
            "sourceUri": source_uri,
            "storageAccountId": storage_account_id,
        }
        await self._create_disk(
            "import", disk_id, creation, location, os_type, hyper_v_generation, sku, tags
        )

    async def _create_disk(
        self,
        verb: str,
        disk_id: str,
        creation: dict[str, Any],
        location: str,
        os_type: str | None,
        hyper_v_generation: str,
        sku: str,
        tags: Mapping[str, str] | None,
    ) -> None:
        rid = ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
        properties: dict[str, Any] = {
            "creationData": creation,
            "hyperVGeneration": hyper_v_generation,
        }
        if os_type:
            properties["osType"] = os_type
        body: dict[str, Any] = {
            "location": location,
            "sku": {"name": sku},
            "tags": dict(tags or {}),
            "properties": properties,
        }
        disks = (await self.compute(rid.subscription)).disks
        await lro(
            f"{verb} disk {rid.name}",
            disks.begin_create_or_update(rid.resource_group, rid.name, Disk(body)),
        )

    async def grant_write(self, disk_id: str, seconds: int) -> str:
        """Grant write access for upload; returns the upload URL (a SAS: keep it secret)."""
        rid = ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
        disks = (await self.compute(rid.subscription)).disks
        body: dict[str, Any] = {"access": "Write", "durationInSeconds": seconds}
        access = await lro(
            f"grant write access to disk {rid.name}",
            disks.begin_grant_access(rid.resource_group, rid.name, GrantAccessData(body)),
        )
        return str(access.access_sas)

    async def revoke(self, disk_id: str) -> None:
        rid = ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
        disks = (await self.compute(rid.subscription)).disks
        await lro(
            f"revoke access to disk {rid.name}",
            disks.begin_revoke_access(rid.resource_group, rid.name),
        )

    # -- virtual machines ---------------------------------------------------------------

    async def get_vm(self, vm_id: str) -> VmInfo | None:
        rid = ResourceId.parse(vm_id, expected="Microsoft.Compute/virtualMachines")
        vms = (await self.compute(rid.subscription)).virtual_machines
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
        )

    async def _vm_action(self, vm_id: str, action: str) -> None:
        rid = ResourceId.parse(vm_id, expected="Microsoft.Compute/virtualMachines")
        vms = (await self.compute(rid.subscription)).virtual_machines
        begin = {
            "start": vms.begin_start,
            "deallocate": vms.begin_deallocate,
        }[action]
        async with self._vm_locks[vm_id.lower()]:
            await lro(f"{action} VM {rid.name}", begin(rid.resource_group, rid.name))

    async def start_vm(self, vm_id: str) -> None:
        await self._vm_action(vm_id, "start")

    async def deallocate_vm(self, vm_id: str) -> None:
        await self._vm_action(vm_id, "deallocate")

    async def set_data_disks(
        self, vm_id: str, *, attach: Mapping[int, str] = {}, detach: tuple[str, ...] = ()
    ) -> None:
        """Attach disks at LUNs and detach disks by id, in one VM update (serialised)."""
        rid = ResourceId.parse(vm_id, expected="Microsoft.Compute/virtualMachines")
        vms = (await self.compute(rid.subscription)).virtual_machines
        gone = {disk.lower() for disk in detach}
        async with self._vm_locks[vm_id.lower()]:
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

    async def run_command(
        self,
        vm_id: str,
        *,
        command_id: str,
        script: list[str],
        parameters: Mapping[str, str] | None = None,
    ) -> RunCommandOutput:
        rid = ResourceId.parse(vm_id, expected="Microsoft.Compute/virtualMachines")
        vms = (await self.compute(rid.subscription)).virtual_machines
        body: dict[str, Any] = {"commandId": command_id, "script": script}
        if parameters:
            body["parameters"] = [{"name": k, "value": v} for k, v in parameters.items()]
        # Azure runs one command at a time per VM (409 Conflict otherwise): queue here.
        async with self._run_locks[vm_id.lower()]:
            result = await lro(
                f"run command on VM {rid.name}",
                vms.begin_run_command(rid.resource_group, rid.name, RunCommandInput(body)),
            )
        statuses = (result.as_dict() if result is not None else {}).get("value") or []
        stdout = stderr = ""
        for status in statuses:
            code = str(status.get("code", ""))
            message = str(status.get("message", ""))
            if "StdOut" in code:  # Windows: one status per stream
                stdout = message
            elif "StdErr" in code:
                stderr = message
            elif "[stdout]" in message:  # Linux: "Enable succeeded: [stdout] ... [stderr] ..."
                out, _, err = message.partition("[stdout]")[2].partition("[stderr]")
                stdout, stderr = out.strip("\n"), err.strip("\n")
        return RunCommandOutput(stdout, stderr, tuple(str(s.get("code", "")) for s in statuses))

    async def create_vm(
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
    ) -> None:
        """Register a VM from existing managed disks (createOption Attach); Azure starts it."""
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
        vms = (await self.compute(rid.subscription)).virtual_machines
        async with self._vm_locks[vm_id.lower()]:
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
            info = await self.get_vm(vm_id)
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

    # -- network ------------------------------------------------------------------------

    async def ensure_nic(self, nic_id: str, *, subnet_id: str, location: str) -> str:
        """Create the NIC in ``subnet_id`` unless it exists; returns its id."""
        rid = ResourceId.parse(nic_id, expected="Microsoft.Network/networkInterfaces")
        nics = (await self.network(rid.subscription)).network_interfaces
        try:
            existing = await arm_call(f"get NIC {rid.name}", nics.get(rid.resource_group, rid.name))
            return str(existing.as_dict().get("id") or rid)
        except ControlPlaneError as exc:
            if exc.status != 404:
                raise
        body: dict[str, Any] = {
            "location": location,
            "properties": {
                "ipConfigurations": [
                    {
                        "name": "ipconfig1",
                        "properties": {
                            "subnet": {"id": subnet_id},
                            "privateIPAllocationMethod": "Dynamic",
                        },
                    }
                ]
            },
        }
        await lro(
            f"create NIC {rid.name}",
            nics.begin_create_or_update(rid.resource_group, rid.name, NetworkInterface(body)),
        )
        return str(rid)

    async def ensure_subnet(self, subnet_id: str, *, location: str) -> None:
        """Create the virtual network and subnet of ``subnet_id`` unless they exist."""
        parts = subnet_id.strip("/").split("/")
        if len(parts) != 10 or parts[8].lower() != "subnets":
            raise ControlPlaneError(f"{subnet_id}: not a subnet id")
        subscription, group, vnet, subnet = parts[1], parts[3], parts[7], parts[9]
        network = await self.network(subscription)
        try:
            await arm_call(f"get subnet {subnet}", network.subnets.get(group, vnet, subnet))
            return
        except ControlPlaneError as exc:
            if exc.status != 404:
                raise
        body: dict[str, Any] = {
            "location": location,
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "subnets": [{"name": subnet, "properties": {"addressPrefix": "10.0.0.0/24"}}],
            },
        }
        await lro(
            f"create virtual network {vnet}",
            network.virtual_networks.begin_create_or_update(group, vnet, VirtualNetwork(body)),
        )

    async def create_appliance(
        self,
        vm_id: str,
        *,
        location: str,
        size: str,
        image: Mapping[str, str],
        subnet_id: str,
        os_type: str,
    ) -> None:
        """Create a VM from a marketplace image (as helper appliances and proxies are),
        with a NIC in ``subnet_id``; Azure starts it. Its admin password is random and
        not kept: the appliance is driven by Run Command only."""
        rid = ResourceId.parse(vm_id, expected="Microsoft.Compute/virtualMachines")
        nic_id = (
            f"/subscriptions/{rid.subscription}/resourceGroups/{rid.resource_group}"
            f"/providers/Microsoft.Network/networkInterfaces/{rid.name}-nic"
        )
        await self.ensure_nic(nic_id, subnet_id=subnet_id, location=location)
        body: dict[str, Any] = {
            "location": location,
            "properties": {
                "hardwareProfile": {"vmSize": size},
                "storageProfile": {
                    "imageReference": dict(image),
                    "osDisk": {"createOption": "FromImage", "osType": os_type},
                },
                "osProfile": {
                    "computerName": rid.name[:15],
                    "adminUsername": "azrestore",
                    "adminPassword": secrets.token_urlsafe(24) + "aA1!",
                },
                "networkProfile": {"networkInterfaces": [{"id": nic_id}]},
            },
        }
        vms = (await self.compute(rid.subscription)).virtual_machines
        async with self._vm_locks[vm_id.lower()]:
            await lro(
                f"create VM {rid.name}",
                vms.begin_create_or_update(rid.resource_group, rid.name, VirtualMachine(body)),
            )
