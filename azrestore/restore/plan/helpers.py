"""The plan's ``helpers`` section: per OS family, the helper appliances that prepare the
restored disks, named (one VM id, or a list of them) or created for the run.

```yaml
helpers:
  linux: /subscriptions/.../virtualMachines/helper-linux        # one
  windows: [/subscriptions/.../helper-w1, /subscriptions/.../helper-w2]   # several
  # or: N helpers azrestore creates from a marketplace image and deletes after the run
  # linux: {create: 2, image: Canonical:ubuntu-24_04-lts:server:latest,
  #         size: Standard_D4s_v5, subnet: /subscriptions/.../subnets/default}
```

A Windows VM is prepared on a Windows helper when the plan has one, else offline on a
Linux helper (its registry edited from Linux).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from .ids import subnet_id, vm_id

__all__ = [
    "DEFAULT_HELPER_IMAGES",
    "DEFAULT_HELPER_SIZE",
    "MAX_CREATED_HELPERS",
    "CreatedHelpers",
    "HelperPool",
    "Helpers",
]

#: The most helpers of one family a plan may ask azrestore to create.
MAX_CREATED_HELPERS = 16
#: The size of created helpers unless the plan says (8 data disks: 8 VMs at once).
DEFAULT_HELPER_SIZE = "Standard_D4s_v5"
#: The marketplace image of created helpers unless the plan says.
DEFAULT_HELPER_IMAGES = {
    "linux": "Canonical:ubuntu-24_04-lts:server:latest",
    "windows": "MicrosoftWindowsServer:WindowsServer:2022-datacenter-azure-edition:latest",
}
_IMAGE = re.compile(r"^[A-Za-z0-9][\w.-]*:[\w.-]+:[\w.-]+:[\w.-]+$")
_VM_SIZE = re.compile(r"^(Standard|Basic)_[A-Za-z0-9_-]+$")


class CreatedHelpers(BaseModel):
    """``{create: N, image: ..., size: ..., subnet: ...}``: N helpers made for the run."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    create: int = Field(ge=1, le=MAX_CREATED_HELPERS)
    image: str | None = None
    size: str = DEFAULT_HELPER_SIZE
    #: the subnet of their NICs (default: target.subnet, else the first VM's)
    subnet: str | None = None

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and not _IMAGE.match(value):
            raise ValueError(
                f"{value!r} is not a marketplace image (PUBLISHER:OFFER:SKU:VERSION, e.g."
                f" {DEFAULT_HELPER_IMAGES['linux']})"
            )
        return value

    @field_validator("size")
    @classmethod
    def _size(cls, value: str) -> str:
        if not _VM_SIZE.match(value):
            raise ValueError(f"{value!r} is not a VM size (e.g. {DEFAULT_HELPER_SIZE})")
        return value

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        return None if value is None else subnet_id(value)

    def image_reference(self, family: str) -> dict[str, str]:
        """The image as Azure's ``imageReference``."""
        publisher, offer, sku, version = (self.image or DEFAULT_HELPER_IMAGES[family]).split(":")
        return {"publisher": publisher, "offer": offer, "sku": sku, "version": version}


def _branch(value: Any) -> str:
    if isinstance(value, dict | CreatedHelpers):
        return "created"
    return "list" if isinstance(value, list) else "id"


#: One family's helpers as the plan writes them; errors name only the form written.
HelperField = Annotated[
    Annotated[str, Tag("id")]
    | Annotated[list[str], Tag("list")]
    | Annotated[CreatedHelpers, Tag("created")],
    Discriminator(_branch),
]


@dataclass(frozen=True)
class HelperPool:
    """One family's helpers, as the run uses them: existing VMs (``vm_ids``) or ones to
    create (``create``)."""

    vm_ids: tuple[str, ...] = ()
    create: CreatedHelpers | None = None

    def describe(self) -> str:
        if self.create is not None:
            return f"{self.create.create} helper(s) created for the run ({self.create.size})"
        return ", ".join(self.vm_ids)


class Helpers(BaseModel):
    """The helper appliances that prepare restored disks, per OS family."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    linux: HelperField | None = None
    windows: HelperField | None = None

    @field_validator("linux", "windows", mode="before")
    @classmethod
    def _shape(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            if not value:
                raise ValueError("an empty list (leave it out for no helper)")
            if not all(isinstance(item, str) for item in value):
                raise ValueError("a list of helpers is a list of VM ids")
            return list(value)
        if value is not None and not isinstance(value, str | dict | CreatedHelpers):
            raise ValueError(
                "a helper VM id, a list of them, or {create: N, image: ..., size: ...}"
            )
        return value

    @field_validator("linux", "windows")
    @classmethod
    def _vm(cls, value: Any) -> Any:
        if isinstance(value, str):
            return vm_id(value)
        if isinstance(value, list):
            seen: set[str] = set()
            for item in value:
                vm_id(item)
                if item.lower() in seen:
                    raise ValueError(f"{item} is listed twice")
                seen.add(item.lower())
        return value

    def pool(self, family: str) -> HelperPool | None:
        """The helpers of ``family`` (``linux``/``windows``), or None when there are none."""
        value = getattr(self, family)
        if value is None:
            return None
        if isinstance(value, CreatedHelpers):
            return HelperPool(create=value)
        return HelperPool(vm_ids=(value,) if isinstance(value, str) else tuple(value))

    def vm_ids(self) -> list[tuple[str, int | None, str]]:
        """``(family, index in its list or None, id)`` of every named helper."""
        found: list[tuple[str, int | None, str]] = []
        for family in ("linux", "windows"):
            value = getattr(self, family)
            if isinstance(value, str):
                found.append((family, None, value))
            elif isinstance(value, list):
                found.extend((family, i, item) for i, item in enumerate(value))
        return found
