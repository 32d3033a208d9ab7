"""The sections of a restore plan, as pydantic models: where to restore (``target``),
the proxy, the helpers, how disks are sent (``transfer``), and each VM with its disks.
The whole plan, with its cross-section checks, is
:class:`~azrestore.restore.plan.document.RestorePlan`.

VM names: the VM is created by attaching the restored OS disk, with no OS profile, so the
computer name stays the one inside the image and only Azure's resource-name rule applies:
1-64 letters, digits, hyphens and periods, starting with a letter or digit and ending with
neither a hyphen nor a period. (The 15-character limit is for Windows computer names that
Azure sets when provisioning from a generalized image, which a restore does not do.)
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ...formats.sizes import MAX_PUT_PAGE, SECTOR, format_size
from ...sources.base import FORMATS
from ...sources.locations import join_location
from ...transfer.config import Checksum, TransferConfig
from .fields import (
    CachingField,
    GenerationField,
    OptionalSize,
    OsField,
    SecurityField,
    Size,
    SkuField,
    Tags,
    check_resource_group,
    check_tags,
)
from .helpers import Helpers as Helpers
from .ids import GUID, subnet_id, vm_id

_VM_NAME_CHARS = re.compile(r"[^A-Za-z0-9.-]")
_DISK_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
_VM_SIZE = re.compile(r"^(Standard|Basic)_[A-Za-z0-9_-]+$")
_LOCATION = re.compile(r"^[a-z][a-z0-9]{3,39}$")
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:-?[a-z0-9])*$")
_ACCOUNT_URL = re.compile(
    r"^https://(?P<account>[a-z0-9]{3,24})\.blob\.[a-z0-9.-]+/?$"
    r"|^http://(?:127\.0\.0\.1|localhost)(?::\d+)?/[a-z0-9]{3,24}/?$"  # the local emulator
)


class PlanModel(BaseModel):
    """A plan section: unknown keys are errors, values are frozen and stripped."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


_DEFAULT_TRANSFER = TransferConfig()


class TransferSettings(PlanModel):
    """How disks are sent (see :class:`~azrestore.transfer.config.TransferConfig`)."""

    concurrency: int | None = Field(default=None, ge=1, le=256)
    chunk_size: Size = _DEFAULT_TRANSFER.chunk_size
    max_bandwidth: OptionalSize = None
    checksum: Literal["md5", "crc64", "none"] = "crc64"

    @field_validator("chunk_size")
    @classmethod
    def _chunk(cls, value: int) -> int:
        if not SECTOR <= value <= MAX_PUT_PAGE or value % SECTOR:
            raise ValueError(
                f"{format_size(value)}: a chunk is a multiple of 512 bytes, at most 4 MiB"
            )
        return value

    @field_validator("max_bandwidth")
    @classmethod
    def _bandwidth(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError("must be positive (leave it out for no limit)")
        return value

    def to_config(self) -> TransferConfig:
        return TransferConfig(
            concurrency=self.concurrency,
            chunk_size=self.chunk_size,
            max_bandwidth=self.max_bandwidth,
            checksum=Checksum(self.checksum),
        )


class Target(PlanModel):
    """Where the VMs are restored."""

    subscription: str | None = None
    resource_group: str
    location: str
    subnet: str | None = None
    disks: Literal["managed", "page-blob"] = "managed"
    storage_account: str | None = None
    #: with page-blob: the account's resource id, which Import needs (default: the
    #: environment's AZRESTORE_STORAGE_ACCOUNT_ID, as the emulator sets it)
    storage_account_id: str | None = None
    container: str = "vhds"
    disk_sku: SkuField = "StandardSSD_LRS"
    tags: Tags = {}
    #: the run-wide default of each VM's ``security``, ``secure_boot`` and ``vtpm``
    security: SecurityField = "auto"
    secure_boot: bool | None = None
    vtpm: bool | None = None

    @field_validator("subscription")
    @classmethod
    def _subscription(cls, value: str | None) -> str | None:
        if value is not None and not GUID.match(value):
            raise ValueError(f"{value!r} is not a subscription id (a GUID)")
        return value

    _resource_group = field_validator("resource_group")(check_resource_group)
    _tags = field_validator("tags")(check_tags)

    @field_validator("location", mode="before")
    @classmethod
    def _location(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        # "West Europe" (the display name) is "westeurope" to the API.
        normal = value.replace(" ", "").lower()
        if not _LOCATION.match(normal):
            raise ValueError(f"{value!r} is not an Azure region name (e.g. westeurope, eastus2)")
        return normal

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        return None if value is None else subnet_id(value)

    @field_validator("storage_account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not _ACCOUNT_URL.match(value):
            raise ValueError(
                f"{value!r} is not a storage account's blob URL"
                " (expected https://<account>.blob.core.windows.net)"
            )
        return value

    @field_validator("container")
    @classmethod
    def _container(cls, value: str) -> str:
        if not _CONTAINER.match(value):
            raise ValueError(
                f"{value!r} is not a container name (3-63 lower-case letters, digits and"
                " single hyphens, starting and ending with a letter or digit)"
            )
        return value


class Proxy(PlanModel):
    """A VM in Azure that the transfer goes through; stopped after ``idle_timeout``
    seconds without work."""

    vm: str
    idle_timeout: int = Field(default=300, ge=0, le=7 * 24 * 3600)

    _vm = field_validator("vm")(vm_id)


class DiskSpec(PlanModel):
    """One image. ``path`` is a file, made absolute against the plan file's directory, or
    an NBD URL (``nbd://HOST[:PORT]/EXPORT``, ``nbd+unix:///EXPORT?socket=PATH``), kept as
    it is; ``format`` forces the image's format (one of
    :data:`~azrestore.sources.base.FORMATS`; by default it is found from the image)."""

    path: str
    format: str | None = None
    role: Literal["os", "data"]
    lun: int | None = Field(default=None, ge=0, le=63)
    name: str | None = None
    sku: SkuField | None = None
    caching: CachingField | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ValueError("is empty")
        # Normalised (not resolved: load_plan does not touch the images) so that two
        # spellings of one path are seen as the same.
        return join_location((info.context or {}).get("base_dir"), value)

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is not None and value not in FORMATS:
            raise ValueError(f"{value!r} is not an image format (one of: {', '.join(FORMATS)})")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _DISK_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a disk name (1-80 letters, digits, '_', '.', '-', starting"
                " with a letter or digit, ending with a letter, digit or '_')"
            )
        return value


class VmSpec(PlanModel):
    """One VM to restore."""

    name: str
    size: str
    os: OsField = "auto"
    generation: GenerationField = "auto"
    disks: list[DiskSpec] = Field(min_length=1)
    tags: Tags = {}
    resource_group: str | None = None
    subnet: str | None = None
    private_ip: str | None = None
    disk_sku: SkuField | None = None
    power_on: bool = True
    wait_for_agent: bool = True
    prepare: bool = True
    #: Trusted Launch (see :mod:`~azrestore.restore.plan.security`); None: the target's
    security: SecurityField | None = None
    secure_boot: bool | None = None
    vtpm: bool | None = None
    #: the VM guest state file kept with the backup (a Trusted Launch VM's vTPM state)
    guest_state: str | None = None

    @field_validator("guest_state")
    @classmethod
    def _guest_state(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("is empty")
        return join_location((info.context or {}).get("base_dir"), value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not 1 <= len(value) <= 64:
            raise ValueError(f"{value!r}: a VM name has 1-64 characters")
        bad = _VM_NAME_CHARS.search(value)
        if bad:
            raise ValueError(
                f"{value!r}: {bad.group()!r} is not allowed (letters, digits, '-' and '.')"
            )
        if value[0] in "-.":
            raise ValueError(f"{value!r}: must start with a letter or digit")
        if value[-1] in "-.":
            raise ValueError(f"{value!r}: must not end with {value[-1]!r}")
        return value

    @field_validator("size")
    @classmethod
    def _size(cls, value: str) -> str:
        if not _VM_SIZE.match(value):
            raise ValueError(f"{value!r} is not a VM size (e.g. Standard_D2s_v5)")
        return value

    @field_validator("resource_group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return None if value is None else check_resource_group(value)

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        return None if value is None else subnet_id(value)

    @field_validator("private_ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IPv4 address") from None
        return value

    _tags = field_validator("tags")(check_tags)

    @property
    def os_disk(self) -> DiskSpec | None:
        return next((disk for disk in self.disks if disk.role == "os"), None)
