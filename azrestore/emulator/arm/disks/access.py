"""Access to a disk's page blob: grants (beginGetAccess: a SAS URL on the gateway), revokes
(endGetAccess: after an upload, the VHD footer is checked like Azure checks it), and the
gateway's hook that refuses SAS requests a disk's grants no longer allow."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Final

from azrestore.emulator.arm.calls import Call, Reply
from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.disks.representation import find_disk, refuse_if_busy
from azrestore.emulator.arm.disks.validation import grant_request
from azrestore.emulator.arm.errors import ArmError, invalid_parameter
from azrestore.emulator.arm.state.disks import DiskRecord, Grant
from azrestore.emulator.arm.storage import DISK_BLOB, new_container_name
from azrestore.emulator.arm.vhd_build import build_fixed_vhd_footer
from azrestore.emulator.arm.vhd_check import FOOTER_BYTES, check_fixed_vhd_footer
from azrestore.emulator.storage import SasRefusal

__all__ = ["DiskAccess"]

#: The blob operations a disk SAS allows: page reads and writes.
_DISK_SAS_OPERATIONS: Final = frozenset(
    {"PutPage", "ClearPage", "GetPageRanges", "GetBlob", "GetBlobProperties"}
)


class DiskAccess:
    """Handles beginGetAccess and endGetAccess, and answers the gateway's SAS hook."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.registry = core.registry

    async def grant(self, call: Call, name: str) -> Reply:
        """beginGetAccess: a SAS URL to the disk's page blob (on the gateway)."""
        disk = find_disk(self.registry, call, name)
        body = await call.json()
        access, seconds = grant_request(body)
        if body.get("getSecureVMGuestStateSAS") and disk.security_type is None:
            raise ArmError(
                400,
                "BadRequest",
                "GetSecureVMGuestStateSAS can be set only for disk with SecurityProfile.",
            )
        refuse_if_busy(disk)
        self._check_grantable(disk, access)

        async def run() -> dict[str, str]:
            storage = self.core.disk_storage()
            await self._ensure_blob(disk)
            assert disk.container is not None
            expiry = self.core.clock.now() + timedelta(seconds=seconds)
            url, signature = storage.sas_url(disk.container, write=access == "Write", expiry=expiry)
            if disk.grant is None or disk.grant.access != access:
                disk.grant = Grant(access=str(access), expiry=expiry)
            disk.grant.expiry = max(disk.grant.expiry, expiry)
            disk.grant.signatures.add(signature)
            return {"accessSAS": url}

        operation = self.core.operations.begin_on(
            call,
            disk,
            name="disks/beginGetAccess",
            provider="disks",
            run=run,
            has_output=True,
        )
        return self.core.operations.accepted(call, operation)

    def _check_grantable(self, disk: DiskRecord, access: str) -> None:
        """Refuse a grant the disk's state does not allow (Write: only for an upload)."""
        state = self.registry.disk_state(disk)
        if access == "None":
            raise invalid_parameter("grantAccessData.access", "Access 'None' cannot be granted.")
        if access == "Write" and state not in ("ReadyToUpload", "ActiveUpload"):
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Write access can only be granted to a disk created for upload that is in "
                f"ReadyToUpload state; disk {disk.name} is {state}.",
            )
        if access == "Read":
            if state in ("ReadyToUpload", "ActiveUpload"):
                raise ArmError(
                    409,
                    "OperationNotAllowed",
                    f"Read access cannot be granted to disk {disk.name} in state {state}.",
                )
            if state == "Attached":
                raise ArmError(
                    409,
                    "Conflict",
                    f"Access not permitted because disk {disk.name} is currently attached to "
                    f"running VM {disk.managed_by}.",
                )
        if disk.provisioning_state == "Failed":
            raise ArmError(
                409, "OperationNotAllowed", f"Disk {disk.name} is in a failed provisioning state."
            )

    async def _ensure_blob(self, disk: DiskRecord) -> None:
        """Give a disk without a blob (Empty, FromImage) one: zeros and a fixed VHD footer."""
        if disk.blob_ready:
            return
        storage = self.core.disk_storage()
        container = new_container_name()
        size = disk.disk_size_bytes + FOOTER_BYTES
        await storage.create_blob(container, size)
        await storage.write_tail(container, size, build_fixed_vhd_footer(disk.disk_size_bytes))
        disk.container = container
        disk.blob_ready = True

    async def revoke(self, call: Call, name: str) -> Reply:
        """endGetAccess: end the SAS; after an upload, validate the VHD like Azure."""
        disk = find_disk(self.registry, call, name)
        refuse_if_busy(disk)

        async def run() -> None:
            grant = disk.grant
            if grant is None:
                return
            if grant.access == "Write":
                storage = self.core.disk_storage()
                assert disk.container is not None
                footer, size = await storage.read_footer(disk.container)
                label = f"disk '{DISK_BLOB}' with blob {storage.blob_url(disk.container)}"
                check_fixed_vhd_footer(footer, size, disk=label)
                disk.uploaded = True
            disk.grant = None

        operation = self.core.operations.begin_on(
            call,
            disk,
            name="disks/endGetAccess",
            provider="disks",
            run=run,
        )
        return self.core.operations.accepted(call, operation)

    def sas_refusal(self, operation: str, path: str, query: Mapping[str, str]) -> SasRefusal | None:
        """Whether the gateway must refuse a SAS request to a disk blob, and how.

        None for blobs that are not disks and for requests a live grant allows; 403
        AuthenticationFailed for a SAS that was revoked (or never granted); 403
        AuthorizationPermissionMismatch for requests a disk SAS does not allow (only page
        reads and writes are).
        """
        storage = self.core.storage
        if storage is None:
            return None
        for disk in self.registry.disks.values():
            if disk.container is None or storage.blob_path(disk.container) != path:
                continue
            grant = disk.grant
            if grant is None or query.get("sig") not in grant.signatures:
                return SasRefusal(
                    detail=f"The access to managed disk '{disk.name}' granted by this SAS was "
                    "revoked (EndGetAccess) or never granted."
                )
            if operation not in _DISK_SAS_OPERATIONS:
                return SasRefusal(
                    code="AuthorizationPermissionMismatch",
                    message="This request is not authorized to perform this operation using "
                    "this permission.",
                )
            return None
        return None
