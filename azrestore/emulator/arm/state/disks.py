"""Managed disk records (with their access grants) and their views."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azrestore.emulator.arm.state.resource import ResourceRecord

__all__ = ["DiskRecord", "DiskView", "Grant", "PreparedMark"]


@dataclass(frozen=True)
class PreparedMark:
    """Which run command prepared a disk (attached as a data disk to the VM that ran it).

    ``evidence`` is what the emulator's own inspection found on the disk after a script
    that really ran (empty when the run was recorded), ``os`` the operating system it
    found there ("Linux", "Windows"; None when recorded).
    """

    vm_id: str
    command_id: str
    script: tuple[str, ...]
    parameters: tuple[tuple[str, str], ...]
    operation_id: str
    time: datetime
    evidence: tuple[str, ...] = ()
    os: str | None = None


@dataclass(frozen=True)
class DiskView:
    """A managed disk as the simulator holds it."""

    id: str
    name: str
    resource_group: str
    location: str
    disk_state: str
    provisioning_state: str
    create_option: str
    disk_size_bytes: int
    upload_size_bytes: int | None
    hyper_v_generation: str | None
    os_type: str | None
    managed_by: str | None
    unique_id: str
    tags: Mapping[str, str]
    prepared: PreparedMark | None
    blob_path: str | None
    """The backing page blob in the storage account (``/container/abcd``), once it exists."""
    security_type: str | None = None


@dataclass
class Grant:
    """An access grant on a disk (beginGetAccess)."""

    access: str
    expiry: datetime
    signatures: set[str] = field(default_factory=set)


@dataclass
class DiskRecord(ResourceRecord):
    """A managed disk."""

    sku: str
    create_option: str
    disk_size_bytes: int
    hyper_v_generation: str | None
    os_type: str | None
    unique_id: str
    time_created: datetime
    upload_size_bytes: int | None = None
    source_uri: str | None = None
    storage_account_id: str | None = None
    image_reference: dict[str, Any] | None = None
    provisioning_state: str = "Updating"
    uploaded: bool = False
    managed_by: str | None = None
    grant: Grant | None = None
    prepared: PreparedMark | None = None
    container: str | None = None
    blob_ready: bool = False
    #: securityProfile.securityType (TrustedLaunch...); None: no security profile
    security_type: str | None = None

    def view(self, disk_state: str) -> DiskView:
        """A frozen snapshot (``disk_state`` as the registry derives it)."""
        return DiskView(
            **self.place(),
            disk_state=disk_state,
            provisioning_state=self.provisioning_state,
            create_option=self.create_option,
            disk_size_bytes=self.disk_size_bytes,
            upload_size_bytes=self.upload_size_bytes,
            hyper_v_generation=self.hyper_v_generation,
            os_type=self.os_type,
            managed_by=self.managed_by,
            unique_id=self.unique_id,
            tags=dict(self.tags),
            prepared=self.prepared,
            blob_path=None if self.container is None else f"/{self.container}/abcd",
            security_type=self.security_type,
        )
