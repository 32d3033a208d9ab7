"""Managed disks (``Microsoft.Compute/disks``): create (Upload, Import, Empty), update, get,
list, delete, grant access (beginGetAccess) and revoke it (endGetAccess).

State machine (``diskState``): an Upload disk starts ``ReadyToUpload``; a Write grant makes it
``ActiveUpload``; revoking validates the uploaded VHD footer and makes it ``Unattached``.  A
Read grant makes an unattached (or reserved) disk ``ActiveSAS`` until revoked.  A disk
attached to a VM is ``Attached`` (``Reserved`` while the VM is deallocated).

Choices where Azure's behaviour is not documented: a revoke that finds a bad VHD ends
``Failed`` (InvalidVhd) and leaves the disk ``ActiveUpload`` with its SAS still valid (so the
uploader can fix the footer and revoke again), which is what Storage Explorer's hint after
such a failure describes; a disk with an active SAS cannot be deleted (revoke first).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, Final

from azrestore.emulator.arm.core import (
    Call,
    Core,
    Reply,
    Route,
    arm_id,
    iso,
    location_of,
    new_id,
    required,
    scope_prefix,
    tags_of,
)
from azrestore.emulator.arm.errors import (
    ArmError,
    concurrent_conflict,
    invalid_parameter,
    resource_not_found,
)
from azrestore.emulator.arm.state import DiskRecord, Grant, key
from azrestore.emulator.arm.storage import DISK_BLOB, new_container_name
from azrestore.emulator.storage import SasRefusal
from azrestore.formats.vhd import VhdError, fixed_vhd_footer, validate_fixed_vhd_footer

__all__ = ["DiskHandlers", "check_upload_size"]

GiB: Final = 1024**3
MiB: Final = 1024**2
FOOTER: Final = 512
MIN_UPLOAD: Final = 20 * MiB + FOOTER  # 20,972,032
MAX_UPLOAD: Final = 32 * 1024 * GiB + FOOTER  # 35,183,298,347,520
MAX_DISK_GB: Final = 32_767
MAX_GRANT_SECONDS: Final = 60 * 24 * 3600
TYPE: Final = "Microsoft.Compute/disks"
_SKUS: Final[Mapping[str, str]] = {
    "standard_lrs": "Standard_LRS",
    "premium_lrs": "Premium_LRS",
    "standardssd_lrs": "StandardSSD_LRS",
    "ultrassd_lrs": "UltraSSD_LRS",
    "premium_zrs": "Premium_ZRS",
    "standardssd_zrs": "StandardSSD_ZRS",
    "premiumv2_lrs": "PremiumV2_LRS",
}
_CREATE_OPTIONS: Final = ("Empty", "Upload", "Import")
# Properties the simulator models itself; anything else in a request is echoed back.
_MODELLED: Final = frozenset(
    {
        "creationData",
        "diskSizeGB",
        "diskSizeBytes",
        "osType",
        "hyperVGeneration",
        "provisioningState",
        "diskState",
        "uniqueId",
        "timeCreated",
    }
)


def _choice(value: Any, allowed: tuple[str, ...], path: str) -> str | None:
    """``value`` matched case-insensitively to one of ``allowed`` (None stays None)."""
    if value is None:
        return None
    for option in allowed:
        if str(value).lower() == option.lower():
            return option
    raise invalid_parameter(
        path,
        f"The value '{value}' of parameter '{path}' is not allowed. Allowed values: "
        f"{', '.join(allowed)}.",
    )


def _int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise invalid_parameter(path, f"The value '{value}' of parameter '{path}' is not valid.")
    return int(value)


def check_upload_size(size: int) -> None:
    """Azure's rules for ``uploadSizeBytes`` (400 BadRequest, recorded wording)."""
    if not MIN_UPLOAD <= size <= MAX_UPLOAD:
        raise ArmError(
            400,
            "BadRequest",
            f"The upload size in bytes {size} must be between {MIN_UPLOAD} bytes (20 MiB + "
            f"512 bytes for the VHD footer) and {MAX_UPLOAD} bytes (32 TiB + 512 bytes for "
            "the VHD footer).",
        )
    if (size - FOOTER) % MiB:
        raise ArmError(
            400,
            "BadRequest",
            f"The upload size in bytes {size} - 512 bytes for the VHD footer ({size - FOOTER} "
            "in this case) must be a multiple of MiB.",
        )


class DiskHandlers:
    """Request handlers for ``Microsoft.Compute/disks``."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.registry = core.registry

    # -- routing -----------------------------------------------------------------------------

    def route(self, call: Call, name: str | None, child: list[str]) -> Route:
        """The route of a request under ``.../providers/Microsoft.Compute/disks``."""
        method = call.method
        if name is None:
            if method == "GET":
                return Route("disks/list", self.list_all)
            raise _method_not_allowed(method)
        assert call.resource_group is not None
        rid = arm_id(call.subscription, call.resource_group, "Microsoft.Compute", "disks", name)

        def bind(fn: Callable[[Call, str], Awaitable[Reply]]) -> Callable[[Call], Awaitable[Reply]]:
            return lambda c: fn(c, name)

        if not child:
            if method == "GET":
                return Route("disks/read", bind(self.get), rid)
            if method == "PUT":
                return Route("disks/write", bind(self.put), rid, starts_operation=True)
            if method == "PATCH":
                return Route("disks/update", bind(self.patch), rid, starts_operation=True)
            if method == "DELETE":
                return Route("disks/delete", bind(self.delete), rid, starts_operation=True)
            raise _method_not_allowed(method)
        action = child[0].lower()
        if len(child) == 1 and method == "POST" and action == "begingetaccess":
            return Route("disks/beginGetAccess", bind(self.grant), rid, starts_operation=True)
        if len(child) == 1 and method == "POST" and action == "endgetaccess":
            return Route("disks/endGetAccess", bind(self.revoke), rid, starts_operation=True)
        raise ArmError(
            404, "InvalidResourceType", f"The resource type 'disks/{child[0]}' could not be found."
        )

    # -- helpers -----------------------------------------------------------------------------

    def _disk_id(self, call: Call, name: str) -> str:
        assert call.resource_group is not None
        return arm_id(call.subscription, call.resource_group, "Microsoft.Compute", "disks", name)

    def find(self, call: Call, name: str) -> DiskRecord:
        """The disk, or 404 ResourceNotFound."""
        disk = self.registry.disks.get(key(self._disk_id(call, name)))
        if disk is None:
            assert call.resource_group is not None
            raise resource_not_found(TYPE, name, call.resource_group)
        return disk

    def body(self, disk: DiskRecord) -> dict[str, Any]:
        """The disk as ARM answers it."""
        creation: dict[str, Any] = {"createOption": disk.create_option}
        if disk.upload_size_bytes is not None:
            creation["uploadSizeBytes"] = disk.upload_size_bytes
        if disk.source_uri is not None:
            creation["sourceUri"] = disk.source_uri
        if disk.storage_account_id is not None:
            creation["storageAccountId"] = disk.storage_account_id
        if disk.image_reference is not None:
            creation["imageReference"] = disk.image_reference
        properties: dict[str, Any] = {
            **disk.extra,
            "creationData": creation,
            "diskSizeGB": math.ceil(disk.disk_size_bytes / GiB),
            "diskSizeBytes": disk.disk_size_bytes,
            "uniqueId": disk.unique_id,
            "provisioningState": disk.provisioning_state,
            "timeCreated": iso(disk.time_created),
            "diskState": self.registry.disk_state(disk),
        }
        properties.setdefault("encryption", {"type": "EncryptionAtRestWithPlatformKey"})
        properties.setdefault("networkAccessPolicy", "AllowAll")
        properties.setdefault("publicNetworkAccess", "Enabled")
        if disk.os_type is not None:
            properties["osType"] = disk.os_type
        if disk.hyper_v_generation is not None:
            properties["hyperVGeneration"] = disk.hyper_v_generation
        result: dict[str, Any] = {
            "id": disk.id,
            "name": disk.name,
            "type": TYPE,
            "location": disk.location,
            "sku": {"name": disk.sku, "tier": "Premium" if "Premium" in disk.sku else "Standard"},
            "properties": properties,
        }
        if disk.tags:
            result["tags"] = dict(disk.tags)
        if disk.managed_by is not None:
            result["managedBy"] = disk.managed_by
        return result

    def _refuse_if_busy(self, disk: DiskRecord) -> None:
        if disk.busy:
            raise concurrent_conflict()

    # -- read --------------------------------------------------------------------------------

    async def get(self, call: Call, name: str) -> Reply:
        """GET a disk."""
        return Reply(200, self.body(self.find(call, name)))

    async def list_all(self, call: Call) -> Reply:
        """List disks of a resource group or subscription."""
        prefix = scope_prefix(call)
        items = [self.body(d) for k, d in self.registry.disks.items() if k.startswith(prefix)]
        return Reply(200, {"value": items})

    # -- create / update ---------------------------------------------------------------------

    async def put(self, call: Call, name: str) -> Reply:
        """PUT a disk: create it, or update an existing one."""
        body = await call.json()
        existing = self.registry.disks.get(key(self._disk_id(call, name)))
        if existing is not None:
            return await self._update(call, existing, body, replace=True)
        location = location_of(body)
        props = body.get("properties") or {}
        creation = required(props, "creationData", "disk.creationData")
        option = _choice(
            required(creation, "createOption", "disk.creationData.createOption"),
            _CREATE_OPTIONS,
            "disk.creationData.createOption",
        )
        assert option is not None
        generation = _choice(props.get("hyperVGeneration"), ("V1", "V2"), "disk.hyperVGeneration")
        os_type = _choice(props.get("osType"), ("Windows", "Linux"), "disk.osType")
        sku_name = ((body.get("sku") or {}).get("name")) or "Standard_LRS"
        sku = _SKUS.get(str(sku_name).lower())
        if sku is None:
            raise invalid_parameter("disk.sku.name", f"The SKU '{sku_name}' is not valid.")
        assert call.resource_group is not None
        disk = DiskRecord(
            id=self._disk_id(call, name),
            name=name,
            subscription=call.subscription,
            resource_group=call.resource_group,
            location=location,
            tags=tags_of(body),
            sku=sku,
            create_option=option,
            disk_size_bytes=0,
            hyper_v_generation=generation,
            os_type=os_type,
            unique_id=new_id(),
            time_created=self.core.clock.now(),
            extra={k: v for k, v in props.items() if k not in _MODELLED},
        )
        run: Callable[[], Awaitable[Any]]
        duration = "disks/write"
        if option == "Upload":
            size = _int(
                required(creation, "uploadSizeBytes", "disk.creationData.uploadSizeBytes"),
                "disk.creationData.uploadSizeBytes",
            )
            check_upload_size(size)
            disk.upload_size_bytes = size
            disk.disk_size_bytes = size - FOOTER
            run = self._create_upload_blob(disk)
        elif option == "Empty":
            size_gb = _int(required(props, "diskSizeGB", "disk.diskSizeGB"), "disk.diskSizeGB")
            if not 1 <= size_gb <= MAX_DISK_GB:
                raise invalid_parameter(
                    "disk.diskSizeGB",
                    f"The specified disk size {size_gb} GB is not between 1 and {MAX_DISK_GB} GB.",
                )
            disk.disk_size_bytes = size_gb * GiB
            run = _nothing
        else:
            run = await self._prepare_import(call, disk, creation)
            duration = "disks/import"
        self.registry.disks[key(disk.id)] = disk
        operation = self.core.begin(
            call,
            name="disks/write",
            resource_id=disk.id,
            location=location,
            provider="disks",
            run=run,
            rollback=lambda error: setattr(disk, "provisioning_state", "Failed"),
            delay=self.core.clock.duration(duration),
        )
        disk.pending = operation
        return Reply(202, self.body(disk), self.core.lro_headers(call, operation))

    def _create_upload_blob(self, disk: DiskRecord) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            storage = _need_storage(self.core)
            container = new_container_name()
            assert disk.upload_size_bytes is not None
            await storage.create_blob(container, disk.upload_size_bytes)
            disk.container = container
            disk.blob_ready = True
            disk.provisioning_state = "Succeeded"

        return run

    async def _prepare_import(
        self, call: Call, disk: DiskRecord, creation: Mapping[str, Any]
    ) -> Callable[[], Awaitable[None]]:
        storage = _need_storage(self.core)
        source_uri = str(required(creation, "sourceUri", "disk.creationData.sourceUri"))
        account_id = str(
            required(creation, "storageAccountId", "disk.creationData.storageAccountId")
        )
        if account_id.rstrip("/").lower() != self.core.storage_account_id.lower():
            raise invalid_parameter(
                "disk.creationData.storageAccountId",
                f"The storage account '{account_id}' was not found. The emulator's account is "
                f"'{self.core.storage_account_id}'.",
            )
        parsed = storage.parse_source(source_uri)
        if parsed is None:
            raise invalid_parameter(
                "disk.creationData.sourceUri",
                f"The source URI '{source_uri}' is not a blob in storage account '{account_id}'.",
            )
        source = await storage.source_blob(*parsed)
        if source is None:
            raise invalid_parameter(
                "disk.creationData.sourceUri",
                f"The source blob '{source_uri}' does not exist.",
            )
        if not source.is_page_blob:
            raise invalid_parameter(
                "disk.creationData.sourceUri",
                f"The source blob '{source_uri}' is not a page blob. Only page blobs holding a "
                "fixed VHD can be imported.",
            )
        disk.source_uri = source_uri
        disk.storage_account_id = account_id
        disk.disk_size_bytes = max(0, source.size - FOOTER)

        async def run() -> None:
            footer, size = await storage.read_footer(source.container, source.name)
            try:
                validate_fixed_vhd_footer(
                    footer, size, disk=f"disk '{disk.name}' with blob {source_uri}"
                )
            except VhdError as exc:
                raise ArmError(400, "InvalidVhd", str(exc)) from None
            container = new_container_name()
            await storage.copy(source, container)
            disk.container = container
            disk.blob_ready = True
            disk.uploaded = True
            disk.provisioning_state = "Succeeded"

        return run

    async def patch(self, call: Call, name: str) -> Reply:
        """PATCH a disk (tags, osType, diskSizeGB, ...)."""
        disk = self.find(call, name)
        return await self._update(call, disk, await call.json(), replace=False)

    async def _update(
        self, call: Call, disk: DiskRecord, body: Mapping[str, Any], *, replace: bool
    ) -> Reply:
        self._refuse_if_busy(disk)
        props: Mapping[str, Any] = body.get("properties") or {}
        creation = props.get("creationData")
        if replace and isinstance(creation, Mapping):
            _same(creation.get("createOption"), disk.create_option, "creationData.createOption")
            _same(
                creation.get("uploadSizeBytes"),
                disk.upload_size_bytes,
                "creationData.uploadSizeBytes",
            )
            _same(creation.get("sourceUri"), disk.source_uri, "creationData.sourceUri")
        generation = _choice(props.get("hyperVGeneration"), ("V1", "V2"), "disk.hyperVGeneration")
        if generation is not None and disk.hyper_v_generation not in (None, generation):
            raise _property_change("hyperVGeneration")
        os_type = _choice(props.get("osType"), ("Windows", "Linux"), "disk.osType")
        new_size: int | None = None
        if props.get("diskSizeGB") is not None:
            size_gb = _int(props["diskSizeGB"], "disk.diskSizeGB")
            size = size_gb * GiB
            if size < disk.disk_size_bytes:
                current_gb = math.ceil(disk.disk_size_bytes / GiB)
                raise ArmError(
                    409,
                    "OperationNotAllowed",
                    f"Disk '{disk.name}' cannot be resized from {current_gb} GB to {size_gb} GB: "
                    "disks can only be made larger.",
                )
            if size > disk.disk_size_bytes:
                state = self.registry.disk_state(disk)
                if state not in ("Unattached", "Reserved"):
                    raise ArmError(
                        409,
                        "OperationNotAllowed",
                        f"Disk '{disk.name}' cannot be resized while it is {state}: resizing "
                        "is allowed only for unattached disks or when the VM is deallocated.",
                    )
                new_size = size
        tags = tags_of(body) if (replace or "tags" in body) else disk.tags
        disk.provisioning_state = "Updating"

        async def run() -> None:
            if generation is not None:
                disk.hyper_v_generation = generation
            if os_type is not None:
                disk.os_type = os_type
            if new_size is not None:
                if disk.blob_ready and disk.container is not None:
                    # The data stays; the exported VHD grows, with its footer at the new end.
                    await _need_storage(self.core).resize(
                        disk.container, disk.disk_size_bytes, new_size, fixed_vhd_footer(new_size)
                    )
                disk.disk_size_bytes = new_size
            disk.tags = dict(tags)
            for name, value in props.items():
                if name not in _MODELLED:
                    disk.extra[name] = value
            disk.provisioning_state = "Succeeded"

        operation = self.core.begin(
            call,
            name="disks/update",
            resource_id=disk.id,
            location=disk.location,
            provider="disks",
            run=run,
            rollback=lambda error: setattr(disk, "provisioning_state", "Succeeded"),
        )
        disk.pending = operation
        return Reply(200, self.body(disk), self.core.lro_headers(call, operation))

    # -- delete ------------------------------------------------------------------------------

    async def delete(self, call: Call, name: str) -> Reply:
        """DELETE a disk (204 when it does not exist)."""
        rid = key(self._disk_id(call, name))
        disk = self.registry.disks.get(rid)
        if disk is None:
            return Reply(204)
        self._refuse_if_busy(disk)
        if disk.managed_by is not None:
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Disk {disk.name} is attached to VM {disk.managed_by}.",
            )
        state = self.registry.disk_state(disk)
        if state in ("ActiveSAS", "ActiveUpload"):
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Disk {disk.name} is in state {state}: revoke its access (EndGetAccess) "
                "before deleting it.",
            )

        async def run() -> None:
            self.registry.disks.pop(rid, None)
            if disk.container is not None and self.core.storage is not None:
                await self.core.storage.delete(disk.container)

        operation = self.core.begin(
            call,
            name="disks/delete",
            resource_id=disk.id,
            location=disk.location,
            provider="disks",
            run=run,
        )
        disk.pending = operation
        return self.core.accepted(call, operation)

    # -- access ------------------------------------------------------------------------------

    async def grant(self, call: Call, name: str) -> Reply:
        """beginGetAccess: a SAS URL to the disk's page blob (on the gateway)."""
        disk = self.find(call, name)
        body = await call.json()
        access = _choice(
            required(body, "access", "grantAccessData.access"),
            ("None", "Read", "Write"),
            "grantAccessData.access",
        )
        seconds = _int(
            required(body, "durationInSeconds", "grantAccessData.durationInSeconds"),
            "grantAccessData.durationInSeconds",
        )
        if not 1 <= seconds <= MAX_GRANT_SECONDS:
            raise invalid_parameter(
                "grantAccessData.durationInSeconds",
                f"The value {seconds} of parameter 'durationInSeconds' is not between 1 and "
                f"{MAX_GRANT_SECONDS} (60 days).",
            )
        self._refuse_if_busy(disk)
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

        async def run() -> dict[str, str]:
            storage = _need_storage(self.core)
            await self._ensure_blob(disk)
            assert disk.container is not None
            expiry = self.core.clock.now() + timedelta(seconds=seconds)
            url, signature = storage.sas_url(disk.container, write=access == "Write", expiry=expiry)
            if disk.grant is None or disk.grant.access != access:
                disk.grant = Grant(access=str(access), expiry=expiry)
            disk.grant.expiry = max(disk.grant.expiry, expiry)
            disk.grant.signatures.add(signature)
            return {"accessSAS": url}

        operation = self.core.begin(
            call,
            name="disks/beginGetAccess",
            resource_id=disk.id,
            location=disk.location,
            provider="disks",
            run=run,
            has_output=True,
        )
        disk.pending = operation
        return self.core.accepted(call, operation)

    async def _ensure_blob(self, disk: DiskRecord) -> None:
        """Give a disk without a blob (Empty, FromImage) one: zeros and a fixed VHD footer."""
        if disk.blob_ready:
            return
        storage = _need_storage(self.core)
        container = new_container_name()
        size = disk.disk_size_bytes + FOOTER
        await storage.create_blob(container, size)
        await storage.write_tail(container, size, fixed_vhd_footer(disk.disk_size_bytes))
        disk.container = container
        disk.blob_ready = True

    async def revoke(self, call: Call, name: str) -> Reply:
        """endGetAccess: end the SAS; after an upload, validate the VHD like Azure."""
        disk = self.find(call, name)
        self._refuse_if_busy(disk)

        async def run() -> None:
            grant = disk.grant
            if grant is None:
                return
            if grant.access == "Write":
                storage = _need_storage(self.core)
                assert disk.container is not None
                footer, size = await storage.read_footer(disk.container)
                label = f"disk '{DISK_BLOB}' with blob {storage.blob_url(disk.container)}"
                try:
                    validate_fixed_vhd_footer(footer, size, disk=label)
                except VhdError as exc:
                    raise ArmError(400, "InvalidVhd", str(exc)) from None
                disk.uploaded = True
            disk.grant = None

        operation = self.core.begin(
            call,
            name="disks/endGetAccess",
            resource_id=disk.id,
            location=disk.location,
            provider="disks",
            run=run,
        )
        disk.pending = operation
        return self.core.accepted(call, operation)

    # -- the gateway's SAS hook --------------------------------------------------------------

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


_DISK_SAS_OPERATIONS: Final = frozenset(
    {"PutPage", "ClearPage", "GetPageRanges", "GetBlob", "GetBlobProperties"}
)


async def _nothing() -> None:
    return None


def _need_storage(core: Core) -> Any:
    if core.storage is None:
        raise ArmError(
            500,
            "InternalExecutionError",
            "This simulator has no storage account: disk blobs are unavailable.",
        )
    return core.storage


def _same(requested: Any, current: Any, name: str) -> None:
    if requested is None:
        return
    if isinstance(requested, str) and isinstance(current, str):
        if requested.lower() == current.lower():
            return
    elif requested == current:
        return
    raise _property_change(name)


def _property_change(name: str) -> ArmError:
    return ArmError(
        409,
        "PropertyChangeNotAllowed",
        f"Changing property '{name}' is not allowed.",
        target=name,
    )


def _method_not_allowed(method: str) -> ArmError:
    return ArmError(
        405, "MethodNotAllowed", f"The requested method {method} is not allowed on this resource."
    )
