"""Routing of ``Microsoft.Compute/disks`` requests, reading and deleting disks."""

from __future__ import annotations

from azrestore.emulator.arm.calls import Call, Reply, Route, bind, method_not_allowed, scope_prefix
from azrestore.emulator.arm.core import Core
from azrestore.emulator.arm.disks.access import DiskAccess
from azrestore.emulator.arm.disks.create import DiskCreation
from azrestore.emulator.arm.disks.representation import (
    disk_body,
    disk_id,
    find_disk,
    refuse_if_busy,
)
from azrestore.emulator.arm.disks.update import DiskUpdates
from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.resource_ids import id_key

__all__ = ["DiskHandlers"]


class DiskHandlers:
    """Request handlers for ``Microsoft.Compute/disks``."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.registry = core.registry
        self.creation = DiskCreation(core)
        self.updates = DiskUpdates(core)
        self.access = DiskAccess(core)

    def route(self, call: Call, name: str | None, child: list[str]) -> Route:
        """The route of a request under ``.../providers/Microsoft.Compute/disks``."""
        method = call.method
        if name is None:
            if method == "GET":
                return Route("disks/list", self.list_all)
            raise method_not_allowed(method)
        rid = disk_id(call, name)
        if not child:
            if method == "GET":
                return Route("disks/read", bind(self.get, name), rid)
            if method == "PUT":
                return Route("disks/write", bind(self.put, name), rid, starts_operation=True)
            if method == "PATCH":
                return Route("disks/update", bind(self.patch, name), rid, starts_operation=True)
            if method == "DELETE":
                return Route("disks/delete", bind(self.delete, name), rid, starts_operation=True)
            raise method_not_allowed(method)
        action = child[0].lower()
        if len(child) == 1 and method == "POST" and action == "begingetaccess":
            grant = bind(self.access.grant, name)
            return Route("disks/beginGetAccess", grant, rid, starts_operation=True)
        if len(child) == 1 and method == "POST" and action == "endgetaccess":
            revoke = bind(self.access.revoke, name)
            return Route("disks/endGetAccess", revoke, rid, starts_operation=True)
        raise ArmError(
            404, "InvalidResourceType", f"The resource type 'disks/{child[0]}' could not be found."
        )

    async def get(self, call: Call, name: str) -> Reply:
        """GET a disk."""
        return Reply(200, disk_body(self.registry, find_disk(self.registry, call, name)))

    async def list_all(self, call: Call) -> Reply:
        """List disks of a resource group or subscription."""
        prefix = scope_prefix(call)
        items = [
            disk_body(self.registry, d)
            for k, d in self.registry.disks.items()
            if k.startswith(prefix)
        ]
        return Reply(200, {"value": items})

    async def put(self, call: Call, name: str) -> Reply:
        """PUT a disk: create it, or update an existing one."""
        body = await call.json()
        existing = self.registry.disks.get(id_key(disk_id(call, name)))
        if existing is not None:
            return await self.updates.update(call, existing, body, replace=True)
        return await self.creation.create(call, name, body)

    async def patch(self, call: Call, name: str) -> Reply:
        """PATCH a disk (tags, osType, diskSizeGB, ...)."""
        disk = find_disk(self.registry, call, name)
        return await self.updates.update(call, disk, await call.json(), replace=False)

    async def delete(self, call: Call, name: str) -> Reply:
        """DELETE a disk (204 when it does not exist)."""
        rid = id_key(disk_id(call, name))
        disk = self.registry.disks.get(rid)
        if disk is None:
            return Reply(204)
        refuse_if_busy(disk)
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

        operation = self.core.operations.begin_on(
            call,
            disk,
            name="disks/delete",
            provider="disks",
            run=run,
        )
        return self.core.operations.accepted(call, operation)
