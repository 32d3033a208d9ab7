"""Managed disks on Resource Manager: read one, create one to upload into or import from
a page blob, grant and revoke write access."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from azure.mgmt.compute.models import Disk, DiskUpdate, GrantAccessData

from ..errors import ControlPlaneError
from .arm import arm_call, lro
from .mgmtclients import ManagementClients
from .resource_id import ResourceId


@dataclass(frozen=True, slots=True)
class DiskInfo:
    id: str
    state: str
    size_bytes: int | None
    os_type: str | None
    hyper_v_generation: str | None
    managed_by: str | None
    tags: Mapping[str, str]
    #: creationData.uploadSizeBytes of a disk created for upload
    upload_size_bytes: int | None = None
    #: Azure's uniqueId and timeCreated: both change when a disk is deleted and re-created
    unique_id: str | None = None
    time_created: str | None = None


class Disks:
    """The disk operations of a restore, through ``clients``."""

    def __init__(self, clients: ManagementClients) -> None:
        self._clients = clients

    async def get(self, disk_id: str) -> DiskInfo | None:
        """The disk, or None when it does not exist."""
        rid = ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
        disks = (await self._clients.compute(rid.subscription)).disks
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
            upload_size_bytes=(props.get("creationData") or {}).get("uploadSizeBytes"),
            unique_id=props.get("uniqueId"),
            time_created=None if props.get("timeCreated") is None else str(props["timeCreated"]),
        )

    async def create_for_upload(
        self,
        disk_id: str,
        *,
        location: str,
        upload_size: int,
        os_type: str | None,
        hyper_v_generation: str,
        sku: str,
        tags: Mapping[str, str] | None = None,
        security_type: str | None = None,
    ) -> None:
        """Create an empty disk to upload into (createOption Upload: ReadyToUpload);
        ``security_type`` (TrustedLaunch) gives it a security profile."""
        creation = {"createOption": "Upload", "uploadSizeBytes": upload_size}
        await self._create(
            "create",
            disk_id,
            creation,
            location,
            os_type,
            hyper_v_generation,
            sku,
            tags,
            security_type,
        )

    async def create_by_import(
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
        security_type: str | None = None,
    ) -> None:
        """Create a managed disk from a fixed VHD in a page blob (createOption Import)."""
        creation = {
            "createOption": "Import",
            "sourceUri": source_uri,
            "storageAccountId": storage_account_id,
        }
        await self._create(
            "import",
            disk_id,
            creation,
            location,
            os_type,
            hyper_v_generation,
            sku,
            tags,
            security_type,
        )

    async def _create(
        self,
        verb: str,
        disk_id: str,
        creation: dict[str, Any],
        location: str,
        os_type: str | None,
        hyper_v_generation: str,
        sku: str,
        tags: Mapping[str, str] | None,
        security_type: str | None = None,
    ) -> None:
        rid = ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
        properties: dict[str, Any] = {
            "creationData": creation,
            "hyperVGeneration": hyper_v_generation,
        }
        if os_type:
            properties["osType"] = os_type
        if security_type:
            properties["securityProfile"] = {"securityType": security_type}
        body: dict[str, Any] = {
            "location": location,
            "sku": {"name": sku},
            "tags": dict(tags or {}),
            "properties": properties,
        }
        disks = (await self._clients.compute(rid.subscription)).disks
        await lro(
            f"{verb} disk {rid.name}",
            disks.begin_create_or_update(rid.resource_group, rid.name, Disk(body)),
        )

    async def grant_write(self, disk_id: str, seconds: int) -> str:
        """Grant write access for upload; returns the upload URL (a SAS: keep it secret)."""
        rid = ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
        disks = (await self._clients.compute(rid.subscription)).disks
        body: dict[str, Any] = {"access": "Write", "durationInSeconds": seconds}
        access = await lro(
            f"grant write access to disk {rid.name}",
            disks.begin_grant_access(rid.resource_group, rid.name, GrantAccessData(body)),
        )
        return str(access.access_sas)

    async def add_tags(self, disk_id: str, tags: Mapping[str, str]) -> None:
        """Add ``tags`` to the disk's (a PATCH replaces them all: the others are kept)."""
        rid = ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
        disk = await self.get(disk_id)
        if disk is None:
            raise ControlPlaneError(f"{disk_id}: the managed disk does not exist", status=404)
        disks = (await self._clients.compute(rid.subscription)).disks
        await lro(
            f"tag disk {rid.name}",
            disks.begin_update(
                rid.resource_group, rid.name, DiskUpdate({"tags": {**disk.tags, **tags}})
            ),
        )

    async def delete(self, disk_id: str) -> None:
        """Delete the disk (Azure refuses while access is granted: revoke first)."""
        rid = ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
        disks = (await self._clients.compute(rid.subscription)).disks
        await lro(f"delete disk {rid.name}", disks.begin_delete(rid.resource_group, rid.name))

    async def revoke(self, disk_id: str) -> None:
        """End the access granted (Azure checks an uploaded VHD here)."""
        rid = ResourceId.parse(disk_id, expected="Microsoft.Compute/disks")
        disks = (await self._clients.compute(rid.subscription)).disks
        await lro(
            f"revoke access to disk {rid.name}",
            disks.begin_revoke_access(rid.resource_group, rid.name),
        )
