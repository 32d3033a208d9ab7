"""Helpers that a run creates for itself (the plan's ``helpers: {FAMILY: {create: N,
...}}``): made from a marketplace image when the run starts, deleted with their NIC and OS
disk when their last VM is done, also on failure and Ctrl-C (shielded). The report says
what was created and deleted, and what could not be deleted."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..azure.controlplane import ControlPlane
from ..errors import AzRestoreError
from .plan import ResolvedPlan
from .plan.helpers import CreatedHelpers

__all__ = ["CreatedHelper", "HelperCreation"]

#: The tag that marks a helper as made by a run.
CREATED_TAG = "azrestore-created-helper"


@dataclass
class CreatedHelper:
    """One helper the run creates: its id, and what happened to it."""

    vm_id: str
    family: str
    size: str
    created: bool = False
    deleted: bool = False
    error: str | None = None
    #: the NIC and OS disk that go with it
    resources: list[str] = field(default_factory=list)
    lock: anyio.Lock = field(default_factory=anyio.Lock, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "vm_id": self.vm_id,
            "family": self.family,
            "size": self.size,
            "created": self.created,
            "deleted": self.deleted,
            "error": self.error,
        }


class HelperCreation:
    """Create and delete the helpers of one family that the run makes itself."""

    def __init__(
        self, control: ControlPlane, resolved: ResolvedPlan, family: str, spec: CreatedHelpers
    ) -> None:
        self.control = control
        self.family = family
        self.spec = spec
        plan = resolved.plan
        self.location = plan.target.location
        self.subnet = (
            spec.subnet or plan.target.subnet or next((vm.subnet for vm in resolved.vms), "")
        )
        group = (
            f"/subscriptions/{resolved.subscription}/resourceGroups/{plan.target.resource_group}"
        )
        tag = secrets.token_hex(3)
        self.helpers = [
            CreatedHelper(
                f"{group}/providers/Microsoft.Compute/virtualMachines/"
                f"azrestore-helper-{family}-{tag}-{index + 1}",
                family,
                spec.size,
            )
            for index in range(spec.create)
        ]
        self._by_id = {helper.vm_id: helper for helper in self.helpers}

    async def create(self, vm_id: str) -> None:
        """Create the helper (Azure starts it); its OS disk and NIC go when it is deleted."""
        helper = self._by_id[vm_id]
        try:
            await self.control.create_appliance(
                vm_id,
                location=self.location,
                size=self.spec.size,
                image=self.spec.image_reference(self.family),
                subnet_id=self.subnet,
                os_type="Linux" if self.family == "linux" else "Windows",
                delete_with_vm=True,
                tags={CREATED_TAG: "true"},
            )
        except BaseException as exc:
            if isinstance(exc, AzRestoreError):
                helper.error = f"could not be created: {exc}"
            # It may exist even so (a create that failed or was stopped midway).
            helper.created = True
            raise
        helper.created = True

    async def delete(self, vm_id: str) -> str:
        """Delete the helper with its NIC and OS disk (shielded); failures are recorded,
        not raised. Returns what happened, in words."""
        helper = self._by_id[vm_id]
        with anyio.CancelScope(shield=True):
            async with helper.lock:
                if not helper.created or helper.deleted:
                    return "deleted (created for the run)" if helper.deleted else "not created"
                try:
                    info = await self.control.get_vm(vm_id)
                    nic = (
                        vm_id.replace(
                            "/Microsoft.Compute/virtualMachines/",
                            "/Microsoft.Network/networkInterfaces/",
                        )
                        + "-nic"
                    )
                    os_disk = info.os_disk_id if info is not None else None
                    await self.control.delete_vm(vm_id)
                    # deleteOption Delete takes them with the VM; what is left goes here.
                    await self.control.delete_nic(nic)
                    if os_disk is not None and await self.control.get_disk(os_disk) is not None:
                        await self.control.delete_disk(os_disk)
                    helper.resources = [nic, *([os_disk] if os_disk else [])]
                    helper.deleted = True
                    helper.error = None
                except AzRestoreError as exc:
                    helper.error = f"could not be deleted: {exc}"
                    return f"could not be deleted: {exc}"
        return "deleted (created for the run)"

    async def delete_all(self) -> None:
        """Delete every helper created and not yet deleted (the end of the run)."""
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tasks:
                for helper in self.helpers:
                    tasks.start_soon(self.delete, helper.vm_id)
