"""The restore plan: a YAML file naming where to restore, the helper VMs, and the VMs.

Two stages:

* :func:`load_plan` reads and validates the file (sync, pure apart from reading it; no
  image is opened). Every problem is reported with the plan's name, the field's path and
  its line, e.g. ``plan.yaml: vms[1].disks[0].lun: required for a data disk (line 14)``,
  all of them at once, as one :class:`PlanError` (an :class:`~azrestore.errors.InputError`).
* :func:`resolve_plan` inspects every image and decides each VM's OS family and Hyper-V
  generation from its OS disk, then checks what needs those (helpers, size limits).

Decisions :func:`resolve_plan` makes, in short:

* ``generation: auto`` follows the OS disk's firmware: an EFI system partition (GPT, or
  MBR type 0xEF) means UEFI, hence V2; an MBR with an active partition or boot code, or a
  GPT with a BIOS boot partition, means BIOS, hence V1. When neither shows, it is an error
  asking for ``generation``.
* A forced generation the disk cannot boot with is refused with the reason, never
  converted: V1 on a disk that boots only with UEFI, V2 on one that boots only with BIOS.
  A disk set up for both (ESP and BIOS boot partition) takes either. Forcing one on a disk
  whose firmware cannot be told is allowed, with a warning.
* ``os: auto`` takes the family the partitions show (see
  :mod:`azrestore.formats.partitions`); when they show none it is an error asking for
  ``os``. Forcing a family that contradicts a clear detection is a warning, not an error:
  the user may know better (e.g. an encrypted or unusual layout), and the family only
  chooses the helper, the preparation script and the disk's ``os_type``.
* Azure's size rules: an OS disk over 2 TiB needs V2, an OS disk is at most 4 TiB, a
  managed disk is at least 20 MiB and at most 32 TiB.

Keys (see :func:`example_plan` for a commented plan). Required: ``target.resource_group``,
``target.location``, and per VM ``name``, ``size`` and ``disks`` (each ``path`` and
``role``, and ``lun`` for a data disk). Optional, with their defaults:

* ``version: 1``; ``target.subscription`` (else ``AZURE_SUBSCRIPTION_ID``),
  ``target.subnet`` (else each VM's), ``target.disks: managed`` (or ``page-blob`` with
  ``target.storage_account`` and ``target.container: vhds``),
  ``target.disk_sku: StandardSSD_LRS`` (works with every VM size), ``target.tags``;
* ``proxy: {vm, idle_timeout: 300}``; ``helpers: {linux, windows}`` (VM ids);
* ``transfer: {concurrency: 16, chunk_size: 4MiB, max_bandwidth: null, checksum: crc64}``,
  sizes as ``parse_size`` reads them (``4MiB``, ``200MB/s``);
* per VM: ``os: auto``, ``generation: auto``, ``resource_group``, ``subnet``,
  ``private_ip`` (a static IP on the NIC: Azure assigns it by DHCP), ``disk_sku``,
  ``tags``, ``power_on: true``, ``wait_for_agent: true`` (needs ``power_on``),
  ``prepare: true`` (run the helper's script; false for disks already made for Azure);
* per disk: ``name`` (default ``<vm>-osdisk`` / ``<vm>-data-lun<N>``), ``sku``, ``caching``.

Relative image paths are taken against the plan file's directory and normalised
lexically (``a/../b`` is ``b``); symlinks are not resolved at load time. Unknown keys are
errors (a typo is not silently ignored), and so are duplicate keys in the YAML.

VM names: the VM is created by attaching the restored OS disk, with no OS profile, so the
computer name stays the one inside the image and only Azure's resource-name rule applies:
1-64 letters, digits, hyphens and periods, starting with a letter or digit and ending with
neither a hyphen nor a period. (The 15-character limit is for Windows computer names that
Azure sets when provisioning from a generalized image, which a restore does not do.)
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args, get_origin

import anyio
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..errors import InputError
from ..formats.layout import DiskLayout
from ..formats.partition_types import BIOS_BOOT_GUID, ESP_GUID
from ..formats.sizes import MAX_PUT_PAGE, SECTOR, MiB, TiB, format_size, parse_size
from ..sources.report import ImageReport, inspect_image
from ..transfer.config import Checksum, TransferConfig

__all__ = [
    "DiskSpec",
    "Helpers",
    "PlanError",
    "Proxy",
    "ResolvedDisk",
    "ResolvedPlan",
    "ResolvedVm",
    "RestorePlan",
    "Target",
    "TransferSettings",
    "VmSpec",
    "check_helpers",
    "example_plan",
    "load_plan",
    "parse_plan",
    "parse_resource_id",
    "resolve_plan",
]

OsChoice = Literal["auto", "linux", "windows"]
GenerationChoice = Literal["auto", "V1", "V2"]
OsFamily = Literal["linux", "windows"]
Generation = Literal["V1", "V2"]
DiskSku = Literal[
    "Standard_LRS",
    "StandardSSD_LRS",
    "StandardSSD_ZRS",
    "Premium_LRS",
    "Premium_ZRS",
    "PremiumV2_LRS",
    "UltraSSD_LRS",
]
Caching = Literal["None", "ReadOnly", "ReadWrite"]
Loc = tuple[str | int, ...]

#: Azure's limits on managed disks made by direct upload (upload size minus the footer).
#: (Images over 8 TiB - 1 MiB are refused earlier, by the raw image reader.)
MIN_MANAGED_DISK = 20 * MiB
MAX_MANAGED_DISK = 32 * TiB
#: An OS disk is at most 4 TiB, and over 2 TiB only on Generation 2 (UEFI, GPT).
MAX_OS_DISK = 4 * TiB
MAX_GEN1_OS_DISK = 2 * TiB
#: Disk SKUs that cannot hold an OS disk.
_DATA_ONLY_SKUS = frozenset({"PremiumV2_LRS", "UltraSSD_LRS"})
#: Azure allows 50 tags per resource.
MAX_TAGS = 50
#: Images inspected at once by :func:`resolve_plan`.
INSPECT_CONCURRENCY = 8
SUBSCRIPTION_ENV = "AZURE_SUBSCRIPTION_ID"

_GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")
_VM_NAME_CHARS = re.compile(r"[^A-Za-z0-9.-]")
_DISK_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
_VM_SIZE = re.compile(r"^(Standard|Basic)_[A-Za-z0-9_-]+$")
_LOCATION = re.compile(r"^[a-z][a-z0-9]{3,39}$")
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:-?[a-z0-9])*$")
_ACCOUNT_URL = re.compile(
    r"^https://(?P<account>[a-z0-9]{3,24})\.blob\.[a-z0-9.-]+/?$"
    r"|^http://(?:127\.0\.0\.1|localhost)(?::\d+)?/[a-z0-9]{3,24}/?$"  # the local emulator
)
_TAG_FORBIDDEN = re.compile(r"[<>%&\\?/]")


class PlanError(InputError):
    """A plan with problems: one line per problem in the message, and in ``problems``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


# --- resource ids ---------------------------------------------------------------------


class ResourceIdParts(NamedTuple):
    """A parsed Azure resource id; ``types``/``names`` pair up below the provider, e.g.
    ``("virtualNetworks", "subnets")`` and ``("vnet", "default")``."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.names[-1]


_RESOURCE_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/(?P<ns>[^/]+)/(?P<rest>.+?)/?$",
    re.IGNORECASE,
)
_VM_TYPE = ("Microsoft.Compute", ("virtualMachines",))
_SUBNET_TYPE = ("Microsoft.Network", ("virtualNetworks", "subnets"))
_PLACEHOLDERS = {"virtualMachines": "vm", "virtualNetworks": "vnet", "subnets": "subnet"}


def parse_resource_id(text: str, kind: tuple[str, tuple[str, ...]]) -> ResourceIdParts:
    """Parse an Azure resource id of the given ``(namespace, types)``, e.g.
    ``("Microsoft.Network", ("virtualNetworks", "subnets"))``. Case-insensitive, as Azure
    is. Raises ValueError with the expected shape."""
    namespace, types = kind
    shape = f"/subscriptions/<id>/resourceGroups/<group>/providers/{namespace}/" + "/".join(
        f"{kind_}/<{_PLACEHOLDERS.get(kind_, 'name')}>" for kind_ in types
    )
    match = _RESOURCE_ID.match(text)
    if not match:
        raise ValueError(f"not an Azure resource id: {text!r} (expected {shape})")
    rest = match["rest"].split("/")
    if len(rest) % 2 or not all(rest):
        raise ValueError(f"not an Azure resource id: {text!r} (expected {shape})")
    parts = ResourceIdParts(
        match["sub"], match["group"], match["ns"], tuple(rest[0::2]), tuple(rest[1::2])
    )
    want = (namespace.lower(), tuple(t.lower() for t in types))
    if (parts.namespace.lower(), tuple(t.lower() for t in parts.types)) != want:
        got = "/".join([parts.namespace, *parts.types])
        raise ValueError(
            f"is a {got} id, not a {namespace}/{'/'.join(types)} id (expected {shape})"
        )
    if not _GUID.match(parts.subscription):
        raise ValueError(f"subscription {parts.subscription!r} in {text!r} is not a GUID")
    if not _RESOURCE_GROUP.match(parts.resource_group) or parts.resource_group.endswith("."):
        raise ValueError(f"resource group {parts.resource_group!r} in {text!r} is not valid")
    return parts


def _vm_id(value: str) -> str:
    parse_resource_id(value, _VM_TYPE)
    return value


def _subnet_id(value: str) -> str:
    parse_resource_id(value, _SUBNET_TYPE)
    return value


# --- field types --------------------------------------------------------------------


def _size(value: Any) -> Any:
    """``4MiB``, ``200MB/s`` or a plain number of bytes."""
    if isinstance(value, str):
        return parse_size(value)  # ValueError names the text
    return value


def _scalar_text(value: Any) -> Any:
    """YAML reads ``env: 1`` or ``prod: true`` as numbers and booleans; tags are text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _case_insensitive(choices: tuple[str, ...]) -> Any:
    """Accept ``v2`` for ``V2`` or ``premium_lrs`` for ``Premium_LRS``."""
    by_lower = {choice.lower(): choice for choice in choices}

    def normalize(value: Any) -> Any:
        return by_lower.get(value.lower(), value) if isinstance(value, str) else value

    return BeforeValidator(normalize)


Size = Annotated[int, BeforeValidator(_size)]
OptionalSize = Annotated[int | None, BeforeValidator(_size)]
Tags = dict[str, Annotated[str, BeforeValidator(_scalar_text)]]
SkuField = Annotated[DiskSku, _case_insensitive(get_args(DiskSku))]
OsField = Annotated[OsChoice, _case_insensitive(get_args(OsChoice))]
GenerationField = Annotated[GenerationChoice, _case_insensitive(get_args(GenerationChoice))]
CachingField = Annotated[Caching, _case_insensitive(get_args(Caching))]


def _check_resource_group(value: str) -> str:
    if not _RESOURCE_GROUP.match(value) or value.endswith("."):
        raise ValueError(
            f"{value!r} is not a resource group name (1-90 letters, digits, '-', '_', '.',"
            " '(' or ')', not ending with '.')"
        )
    return value


def _check_tags(tags: dict[str, str]) -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise ValueError(f"{len(tags)} tags; Azure allows at most {MAX_TAGS}")
    for name, value in tags.items():
        if not 1 <= len(name) <= 512 or _TAG_FORBIDDEN.search(name):
            raise ValueError(f"tag name {name!r}: 1-512 characters, none of < > % & \\ ? /")
        if len(value) > 256:
            raise ValueError(f"tag {name!r}: the value is longer than 256 characters")
    return tags


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


_DEFAULT_TRANSFER = TransferConfig()


class TransferSettings(_Model):
    """How disks are sent (see :class:`~azrestore.transfer.config.TransferConfig`)."""

    concurrency: int = Field(default=_DEFAULT_TRANSFER.concurrency, ge=1, le=256)
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


class Target(_Model):
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

    @field_validator("subscription")
    @classmethod
    def _subscription(cls, value: str | None) -> str | None:
        if value is not None and not _GUID.match(value):
            raise ValueError(f"{value!r} is not a subscription id (a GUID)")
        return value

    _resource_group = field_validator("resource_group")(_check_resource_group)
    _tags = field_validator("tags")(_check_tags)

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
        return None if value is None else _subnet_id(value)

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


class Proxy(_Model):
    """A VM in Azure that the transfer goes through; stopped after ``idle_timeout``
    seconds without work."""

    vm: str
    idle_timeout: int = Field(default=300, ge=0, le=7 * 24 * 3600)

    _vm = field_validator("vm")(_vm_id)


class Helpers(_Model):
    """The helper appliances (VM ids) that prepare restored disks, per OS family."""

    linux: str | None = None
    windows: str | None = None

    @field_validator("linux", "windows")
    @classmethod
    def _vm(cls, value: str | None) -> str | None:
        return None if value is None else _vm_id(value)


class DiskSpec(_Model):
    """One image. ``path`` is made absolute against the plan file's directory."""

    path: Path
    role: Literal["os", "data"]
    lun: int | None = Field(default=None, ge=0, le=63)
    name: str | None = None
    sku: SkuField | None = None
    caching: CachingField | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: Path, info: ValidationInfo) -> Path:
        if not str(value).strip():
            raise ValueError("is empty")
        base = (info.context or {}).get("base_dir")
        if not value.is_absolute() and base is not None:
            value = Path(base) / value
        # Normalised (not resolved: load_plan does not touch the images) so that two
        # spellings of one path are seen as the same.
        return Path(os.path.normpath(value))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _DISK_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a disk name (1-80 letters, digits, '_', '.', '-', starting"
                " with a letter or digit, ending with a letter, digit or '_')"
            )
        return value


class VmSpec(_Model):
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
        return None if value is None else _check_resource_group(value)

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        return None if value is None else _subnet_id(value)

    @field_validator("private_ip")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IPv4 address") from None
        return value

    _tags = field_validator("tags")(_check_tags)

    @property
    def os_disk(self) -> DiskSpec | None:
        return next((disk for disk in self.disks if disk.role == "os"), None)


class _Problems(ValueError):
    """Cross-field problems found after the fields themselves validated."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(f"{_format_loc(loc)}: {msg}" for loc, msg in problems))
        self.problems = problems


class RestorePlan(_Model):
    """A validated plan. Build one with :func:`load_plan` (or :func:`parse_plan`)."""

    version: Literal[1] = 1
    target: Target
    proxy: Proxy | None = None
    helpers: Helpers = Helpers()
    transfer: TransferSettings = TransferSettings()
    vms: list[VmSpec] = Field(min_length=1)

    _source: str = PrivateAttr("plan")
    _lines: dict[Loc, int] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        """The plan's name in messages (the path it was loaded from)."""
        return self._source

    @model_validator(mode="after")
    def _cross_checks(self) -> RestorePlan:
        problems = _check_plan(self)
        if problems:
            raise _Problems(problems)
        return self

    def problem(self, loc: Loc, message: str) -> str:
        """One line of a :class:`PlanError`: ``plan.yaml: loc: message (line N)``."""
        return _problem_line(self._source, loc, message, self._lines)


# --- cross-field checks ----------------------------------------------------------------


def _check_plan(plan: RestorePlan) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    target = plan.target
    if target.disks == "page-blob" and target.storage_account is None:
        problems.append((("target", "storage_account"), "required with disks: page-blob"))
    if target.disks == "managed":
        problems.extend(
            (("target", key), "only used with disks: page-blob")
            for key in ("storage_account", "container")
            if key in target.model_fields_set
        )
    if target.subscription is not None:
        problems.extend(_subscription_problems(plan, target.subscription))

    names: dict[str, int] = {}
    paths: dict[Path, Loc] = {}
    disk_names: dict[tuple[str, str], Loc] = {}
    for index, vm in enumerate(plan.vms):
        loc: Loc = ("vms", index)
        first = names.setdefault(vm.name.lower(), index)
        if first != index:
            problems.append(((*loc, "name"), f"{vm.name!r} is already the name of vms[{first}]"))
        if vm.subnet is None and target.subnet is None:
            problems.append(((*loc, "subnet"), "required (there is no target.subnet)"))
        if not vm.power_on and vm.wait_for_agent and "wait_for_agent" in vm.model_fields_set:
            problems.append(((*loc, "wait_for_agent"), "needs power_on: true"))
        if len(target.tags.keys() | vm.tags.keys()) > MAX_TAGS:
            problems.append(((*loc, "tags"), f"more than {MAX_TAGS} with target.tags"))
        if vm.prepare and vm.os != "auto":
            helper = getattr(plan.helpers, vm.os)
            if helper is None:
                problems.append(_missing_helper(vm.os, index, vm.name))
        problems.extend(_check_disks(plan, vm, loc, paths, disk_names))
    return problems


def _check_disks(
    plan: RestorePlan,
    vm: VmSpec,
    vm_loc: Loc,
    paths: dict[Path, Loc],
    disk_names: dict[tuple[str, str], Loc],
) -> Iterator[tuple[Loc, str]]:
    os_disk: Loc | None = None
    luns: dict[int, Loc] = {}
    group = (vm.resource_group or plan.target.resource_group).lower()
    for index, disk in enumerate(vm.disks):
        loc = (*vm_loc, "disks", index)
        if disk.role == "os":
            if os_disk is not None:
                yield (*loc, "role"), f"a second OS disk ({_format_loc(os_disk)} is one)"
            os_disk = os_disk or loc
            if disk.lun is not None:
                yield (*loc, "lun"), "an OS disk has no LUN (leave it out)"
            sku = disk.sku or vm.disk_sku or plan.target.disk_sku
            if sku in _DATA_ONLY_SKUS:
                yield (*loc, "sku"), f"{sku} cannot hold an OS disk"
        elif disk.lun is None:
            yield (*loc, "lun"), "required for a data disk"
        else:
            other = luns.setdefault(disk.lun, loc)
            if other != loc:
                yield (*loc, "lun"), f"LUN {disk.lun} is already used by {_format_loc(other)}"
        other = paths.setdefault(disk.path, loc)
        if other != loc:
            yield (*loc, "path"), f"{disk.path} is already used by {_format_loc(other)}"
        if disk.name is not None:
            other = disk_names.setdefault((group, disk.name.lower()), loc)
            if other != loc:
                yield (*loc, "name"), f"{disk.name!r} is already used by {_format_loc(other)}"
    if os_disk is None:
        yield (*vm_loc, "disks"), "no OS disk (give one disk role: os)"


def _missing_helper(family: str, index: int, name: str) -> tuple[Loc, str]:
    label = {"linux": "Linux", "windows": "Windows"}[family]
    return (
        ("helpers", family),
        f"required: vms[{index}] ({name}) is a {label} VM to prepare (or set prepare: false on it)",
    )


def _subscription_problems(plan: RestorePlan, subscription: str) -> list[tuple[Loc, str]]:
    """Disks attach only to VMs, and NICs only join subnets, of their own subscription."""
    problems: list[tuple[Loc, str]] = []
    ids: list[tuple[Loc, str | None, tuple[str, tuple[str, ...]]]] = [
        (("target", "subnet"), plan.target.subnet, _SUBNET_TYPE),
        (("helpers", "linux"), plan.helpers.linux, _VM_TYPE),
        (("helpers", "windows"), plan.helpers.windows, _VM_TYPE),
    ]
    ids += [(("vms", i, "subnet"), vm.subnet, _SUBNET_TYPE) for i, vm in enumerate(plan.vms)]
    for loc, value, kind in ids:
        if value is None:
            continue
        theirs = parse_resource_id(value, kind).subscription
        if theirs.lower() != subscription.lower():
            problems.append(
                (loc, f"is in subscription {theirs}, not in the target's ({subscription})")
            )
    return problems


# --- errors -------------------------------------------------------------------------------


def _format_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(plan)"


def _line_of(loc: Loc, lines: Mapping[Loc, int]) -> int | None:
    return next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)


def _problem_line(source: str, loc: Loc, message: str, lines: Mapping[Loc, int]) -> str:
    line = _line_of(loc, lines)
    where = f" (line {line})" if line is not None else ""
    return f"{source}: {_format_loc(loc)}: {message}{where}"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class whose field ``loc`` names (to list the allowed keys)."""
    model: type[BaseModel] | None = RestorePlan
    for part in loc[:-1]:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        model = _inner_model(info.annotation) if info else None
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None or get_args(annotation):
        for arg in get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def _pydantic_problems(error: ValidationError) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for item in error.errors():
        loc: Loc = tuple(item["loc"])
        kind = item["type"]
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, _Problems):
            problems.extend(cause.problems)
            continue
        if kind == "missing":
            message = "required"
        elif kind == "extra_forbidden":
            model = _model_at(loc)
            allowed = ", ".join(model.model_fields) if model else ""
            message = "unknown key" + (f" (expected one of: {allowed})" if allowed else "")
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            message = message.replace("Input should", "should", 1)
            value = item.get("input")
            if kind != "value_error" and isinstance(value, str | int | float | bool | None):
                message += f" (got {value!r})"
        problems.append((loc, message))
    return problems


# --- loading --------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys (PyYAML would keep the last silently)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node.start_mark.line)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            ) from None
        if first != key_node.start_mark.line:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {first + 1})",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line_map(
    node: yaml.Node | None, loc: Loc = (), lines: dict[Loc, int] | None = None
) -> dict[Loc, int]:
    """Each path in the document -> the line (1-based) of its key or item."""
    lines = {} if lines is None else lines
    if node is None:
        return lines
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                child = (*loc, str(key_node.value))
                lines[child] = key_node.start_mark.line + 1
                _line_map(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*loc, index), lines)
    return lines


def parse_plan(text: str, *, source: str = "plan", base_dir: str | os.PathLike[str]) -> RestorePlan:
    """Validate a plan given as YAML text; relative image paths are taken against
    ``base_dir``. Raises :class:`PlanError` listing every problem."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        raise PlanError([f"{source}: not valid YAML: {what}{where}"]) from None
    except yaml.YAMLError as exc:
        raise PlanError([f"{source}: not valid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise PlanError([f"{source}: a plan is a mapping with target and vms, not {found}"])
    lines = _line_map(node)
    try:
        plan = RestorePlan.model_validate(data, context={"base_dir": Path(base_dir)})
    except ValidationError as exc:
        # In the file's order, top to bottom.
        problems = sorted(_pydantic_problems(exc), key=lambda p: _line_of(p[0], lines) or 0)
        raise PlanError([_problem_line(source, loc, msg, lines) for loc, msg in problems]) from None
    plan._source = source
    plan._lines = lines
    return plan


def load_plan(path: str | os.PathLike[str]) -> RestorePlan:
    """Read and validate a plan file. Sync and pure apart from reading the file (no image
    is opened: see :func:`resolve_plan`); run it in a worker thread from async code.
    Raises :class:`PlanError` (an InputError, exit code 2) listing every problem."""
    plan_path = Path(path)
    source = str(path)
    try:
        text = plan_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{source}: is a directory, not a plan") from None
    except PermissionError:
        raise InputError(f"{source}: permission denied") from None
    except UnicodeDecodeError:
        raise InputError(f"{source}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror or exc}") from None
    return parse_plan(text, source=source, base_dir=plan_path.absolute().parent)


# --- resolving --------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedDisk:
    """A disk with its image inspected. ``lun`` is None for the OS disk."""

    spec: DiskSpec
    report: ImageReport
    name: str
    sku: DiskSku
    lun: int | None

    @property
    def size(self) -> int:
        """The disk's size in Azure (a whole number of MiB)."""
        return self.report.virtual_size


@dataclass(frozen=True)
class ResolvedVm:
    """A VM with its OS family and generation decided."""

    index: int
    spec: VmSpec
    os_family: OsFamily
    generation: Generation
    resource_group: str
    subnet: str
    tags: dict[str, str]
    disks: tuple[ResolvedDisk, ...]
    #: The helper VM that prepares the disks; None when ``prepare: false``.
    helper: str | None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def os_disk(self) -> ResolvedDisk:
        return next(disk for disk in self.disks if disk.lun is None)

    @property
    def data_disks(self) -> tuple[ResolvedDisk, ...]:
        return tuple(sorted((d for d in self.disks if d.lun is not None), key=_lun))


def _lun(disk: ResolvedDisk) -> int:
    return disk.lun if disk.lun is not None else -1


@dataclass(frozen=True)
class ResolvedPlan:
    """A plan whose images were all inspected, ready to run."""

    plan: RestorePlan
    subscription: str
    vms: tuple[ResolvedVm, ...]
    warnings: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "subscription": self.subscription,
            "location": self.plan.target.location,
            "disks": self.plan.target.disks,
            "vms": [
                {
                    "name": vm.name,
                    "os_family": vm.os_family,
                    "generation": vm.generation,
                    "resource_group": vm.resource_group,
                    "subnet": vm.subnet,
                    "helper": vm.helper,
                    "disks": [
                        {
                            "path": str(disk.spec.path),
                            "name": disk.name,
                            "role": disk.spec.role,
                            "lun": disk.lun,
                            "sku": disk.sku,
                            "size": disk.size,
                        }
                        for disk in vm.disks
                    ],
                }
                for vm in self.vms
            ],
            "warnings": list(self.warnings),
        }


def check_helpers(resolved: ResolvedPlan) -> None:
    """The second stage of the helper check: with every OS family known, each family
    with a VM to prepare needs its helper. Raises :class:`PlanError`."""
    plan = resolved.plan
    problems = [
        plan.problem(*_missing_helper(vm.os_family, vm.index, vm.name))
        for vm in resolved.vms
        if vm.spec.prepare and getattr(plan.helpers, vm.os_family) is None
    ]
    if problems:
        raise PlanError(list(dict.fromkeys(problems)))


async def resolve_plan(
    plan: RestorePlan, *, environ: Mapping[str, str] | None = None
) -> ResolvedPlan:
    """Inspect every image of the plan and decide each VM's OS family and generation.

    The subscription is the plan's, else ``AZURE_SUBSCRIPTION_ID`` from ``environ``
    (default: the process environment). Raises :class:`PlanError` listing every problem:
    unusable images (missing, empty, not raw), undecidable or contradictory OS family or
    generation, Azure's size limits, and missing helpers.
    """
    problems: list[str] = []
    subscription = _subscription(plan, os.environ if environ is None else environ, problems)
    if subscription and plan.target.subscription is None:
        problems += [
            plan.problem(loc, msg) for loc, msg in _subscription_problems(plan, subscription)
        ]
    reports = await _inspect_all(plan, problems)
    warnings: list[str] = []
    vms = []
    for index, vm in enumerate(plan.vms):
        resolved = _resolve_vm(plan, index, vm, reports, problems, warnings)
        if resolved is not None:
            vms.append(resolved)
    if problems:
        raise PlanError(problems)
    result = ResolvedPlan(plan, subscription or "", tuple(vms), tuple(warnings))
    check_helpers(result)
    return result


def _subscription(plan: RestorePlan, environ: Mapping[str, str], problems: list[str]) -> str | None:
    if plan.target.subscription is not None:
        return plan.target.subscription
    value = environ.get(SUBSCRIPTION_ENV, "").strip()
    if not value:
        problems.append(
            plan.problem(("target", "subscription"), f"not set, and neither is {SUBSCRIPTION_ENV}")
        )
        return None
    if not _GUID.match(value):
        problems.append(
            plan.problem(
                ("target", "subscription"),
                f"not set, and {SUBSCRIPTION_ENV}={value!r} is not a subscription id",
            )
        )
        return None
    return value


async def _inspect_all(plan: RestorePlan, problems: list[str]) -> dict[Loc, ImageReport]:
    """Inspect the images a few at a time; an unusable image becomes a problem naming
    its plan field (the InputError already names the path)."""
    reports: dict[Loc, ImageReport] = {}
    failures: dict[Loc, str] = {}
    limiter = anyio.CapacityLimiter(INSPECT_CONCURRENCY)

    async def inspect(loc: Loc, path: Path) -> None:
        async with limiter:
            try:
                reports[loc] = await inspect_image(path)
            except InputError as exc:
                failures[loc] = str(exc)

    async with anyio.create_task_group() as group:
        for v, vm in enumerate(plan.vms):
            for d, disk in enumerate(vm.disks):
                group.start_soon(inspect, ("vms", v, "disks", d, "path"), disk.path)
    problems += [plan.problem(loc, failures[loc]) for loc in sorted(failures, key=_loc_key)]
    return reports


def _loc_key(loc: Loc) -> tuple[str, ...]:
    return tuple(f"{part:08d}" if isinstance(part, int) else part for part in loc)


def _resolve_vm(
    plan: RestorePlan,
    index: int,
    vm: VmSpec,
    reports: Mapping[Loc, ImageReport],
    problems: list[str],
    warnings: list[str],
) -> ResolvedVm | None:
    loc: Loc = ("vms", index)
    os_index = next(i for i, disk in enumerate(vm.disks) if disk.role == "os")
    os_report = reports.get((*loc, "disks", os_index, "path"))
    before = len(problems)
    disks: list[ResolvedDisk] = []
    for d, spec in enumerate(vm.disks):
        report = reports.get((*loc, "disks", d, "path"))
        if report is None:
            continue
        _check_size(plan, (*loc, "disks", d), spec, report, problems)
        disks.append(
            ResolvedDisk(
                spec=spec,
                report=report,
                name=spec.name or _disk_name(vm.name, spec),
                sku=spec.sku or vm.disk_sku or plan.target.disk_sku,
                lun=spec.lun if spec.role == "data" else None,
            )
        )
    if os_report is None:
        return None
    disk_loc = (*loc, "disks", os_index)
    if os_report.layout.scheme == "none":
        found = os_report.layout.filesystem
        problems.append(
            plan.problem(
                (*disk_loc, "role"),
                f"{os_report.path} has no partition table"
                + (f" (a whole-disk {found} file system)" if found else "")
                + ": it cannot boot as an OS disk (use role: data)",
            )
        )
        return None
    family = _decide_family(plan, loc, vm, os_report, problems, warnings)
    generation = _decide_generation(plan, loc, vm, os_report, problems, warnings)
    if generation == "V1" and os_report.virtual_size > MAX_GEN1_OS_DISK:
        problems.append(
            plan.problem(
                (*loc, "generation"),
                f"{os_report.path} is {format_size(os_report.virtual_size)}: an OS disk over"
                " 2 TiB needs generation V2 (UEFI), and this one boots with BIOS",
            )
        )
    warnings += [f"{plan.source}: {_format_loc(disk_loc)}: {w}" for w in os_report.layout.warnings]
    if family is None or generation is None or len(problems) > before:
        return None
    return ResolvedVm(
        index=index,
        spec=vm,
        os_family=family,
        generation=generation,
        resource_group=vm.resource_group or plan.target.resource_group,
        subnet=vm.subnet or plan.target.subnet or "",
        tags={**plan.target.tags, **vm.tags},
        disks=tuple(disks),
        helper=getattr(plan.helpers, family) if vm.prepare else None,
    )


def _disk_name(vm: str, spec: DiskSpec) -> str:
    return f"{vm}-osdisk" if spec.role == "os" else f"{vm}-data-lun{spec.lun}"


def _check_size(
    plan: RestorePlan, loc: Loc, spec: DiskSpec, report: ImageReport, problems: list[str]
) -> None:
    size = report.virtual_size
    shown = f"{report.path} is {format_size(size)}"
    if spec.role == "os" and size > MAX_OS_DISK:
        problems.append(plan.problem((*loc, "path"), f"{shown}: an OS disk is at most 4 TiB"))
    if plan.target.disks == "managed":
        if size < MIN_MANAGED_DISK:
            problems.append(
                plan.problem((*loc, "path"), f"{shown}: a managed disk is at least 20 MiB")
            )
        elif size > MAX_MANAGED_DISK:
            problems.append(
                plan.problem((*loc, "path"), f"{shown}: a managed disk is at most 32 TiB")
            )


def _describe(layout: DiskLayout) -> str:
    """``GPT: EFI system partition (fat32), Linux filesystem (ext4)`` and the like."""
    if not layout.partitions:
        return f"{layout.scheme.upper()} with no partitions"
    parts = ", ".join(
        p.type_name + (f" ({p.filesystem})" if p.filesystem else "") for p in layout.partitions
    )
    return f"{layout.scheme.upper()}: {parts}"


def _boots_with(layout: DiskLayout) -> tuple[bool, bool]:
    """(UEFI, BIOS): whether the disk carries what each firmware boots from."""
    uefi = any(p.type in (ESP_GUID, "0xef") for p in layout.partitions)
    bios = layout.firmware == "bios" or any(
        p.type == BIOS_BOOT_GUID or (layout.scheme == "gpt" and p.bootable)
        for p in layout.partitions
    )
    return uefi, bios


def _decide_family(
    plan: RestorePlan,
    loc: Loc,
    vm: VmSpec,
    report: ImageReport,
    problems: list[str],
    warnings: list[str],
) -> OsFamily | None:
    detected = report.layout.os_family
    if vm.os == "auto":
        if detected == "unknown":
            problems.append(
                plan.problem(
                    (*loc, "os"),
                    f"cannot tell the OS family of {report.path} ({_describe(report.layout)});"
                    " set os: linux or os: windows",
                )
            )
            return None
        return detected
    if detected != "unknown" and detected != vm.os:
        warnings.append(
            f"{plan.source}: {_format_loc((*loc, 'os'))}: set to {vm.os}, but {report.path}"
            f" looks like {detected} ({_describe(report.layout)}); going with {vm.os}"
        )
    return vm.os


def _decide_generation(
    plan: RestorePlan,
    loc: Loc,
    vm: VmSpec,
    report: ImageReport,
    problems: list[str],
    warnings: list[str],
) -> Generation | None:
    layout = report.layout
    uefi, bios = _boots_with(layout)
    where = (*loc, "generation")
    if vm.generation == "auto":
        if layout.generation is None:
            problems.append(
                plan.problem(
                    where,
                    f"cannot tell whether {report.path} boots with UEFI or BIOS"
                    f" ({_describe(layout)}: no EFI system partition, no active partition,"
                    " no boot code); set generation: V2 (UEFI) or V1 (BIOS)",
                )
            )
        return layout.generation
    wanted, needs, has = ("V1", "BIOS", "UEFI") if vm.generation == "V1" else ("V2", "UEFI", "BIOS")
    can_boot, other = (bios, uefi) if vm.generation == "V1" else (uefi, bios)
    if can_boot:
        return vm.generation
    if other:
        missing = (
            "no active partition, BIOS boot partition or boot code"
            if wanted == "V1"
            else "no EFI system partition"
        )
        problems.append(
            plan.problem(
                where,
                f"{wanted} VMs boot with {needs}, but {report.path} boots with {has}"
                f" ({_describe(layout)}; {missing}), so it would not start. azrestore does"
                " not convert boot loaders and Azure cannot change a disk's generation"
                f" later: use generation: {'V2' if wanted == 'V1' else 'V1'} (or auto)",
            )
        )
        return None
    warnings.append(
        f"{plan.source}: {_format_loc(where)}: {wanted} as the plan says; the partition"
        f" table of {report.path} does not show whether it boots with {needs}"
    )
    return vm.generation


# --- example ----------------------------------------------------------------------------

_EXAMPLE = """\
# azrestore restore plan. Image paths are relative to this file (or absolute).
version: 1

target:
  # Subscription id; leave it out to use AZURE_SUBSCRIPTION_ID from the environment.
  subscription: 00000000-0000-0000-0000-000000000000
  resource_group: restored        # must exist; VMs, disks and NICs are created in it
  location: westeurope            # region name ("West Europe" works too)
  # The subnet the VMs' NICs join (a VM may name its own).
  subnet: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/network/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default
  disks: managed                  # managed (direct upload) or page-blob
  # storage_account: https://mystorage.blob.core.windows.net   # with disks: page-blob
  # container: vhds                                            # with disks: page-blob
  disk_sku: StandardSSD_LRS       # Standard_LRS, StandardSSD_LRS, Premium_LRS, ...
  tags: {restored-by: azrestore}  # on every VM (a VM's own tags win)

# Optional: a VM in Azure the transfer goes through, stopped when idle.
proxy:
  vm: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/infra/providers/Microsoft.Compute/virtualMachines/azproxy
  idle_timeout: 300               # seconds without work before it is stopped

# Helper VMs that prepare restored disks for Azure (disks are attached to them and a
# script run): one per OS family you restore, in the target subscription and region.
helpers:
  linux: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/infra/providers/Microsoft.Compute/virtualMachines/helper-linux
  windows: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/infra/providers/Microsoft.Compute/virtualMachines/helper-windows

# How disks are sent (all optional).
transfer:
  concurrency: 16                 # requests in flight
  chunk_size: 4MiB                # at most 4 MiB, a multiple of 512 bytes
  max_bandwidth: null             # e.g. 200MB/s; null for no limit
  checksum: crc64                 # crc64, md5 or none

vms:
  - name: web01                   # 1-64 letters, digits, '-', '.'
    size: Standard_D2s_v5
    os: auto                      # auto (from the OS disk), linux or windows
    generation: auto              # auto (UEFI: V2, BIOS: V1), V1 or V2
    disks:
      - {path: backups/web01-os.raw, role: os}
      - {path: backups/web01-data.raw, role: data, lun: 0}
    tags: {app: web}
    # Optional per VM: resource_group, subnet, private_ip (static, on the NIC),
    # disk_sku, and per disk: name, sku, caching (None, ReadOnly, ReadWrite).
    power_on: true                # start the VM once created
    wait_for_agent: true          # and wait until its VM agent reports Ready
    prepare: true                 # run the helper's preparation script on its disks

  - name: db01
    size: Standard_E4s_v5
    os: windows
    disks:
      - {path: backups/db01-c.raw, role: os}
      - {path: backups/db01-d.raw, role: data, lun: 0, sku: Premium_LRS, caching: ReadOnly}
      - {path: backups/db01-e.raw, role: data, lun: 1, sku: Premium_LRS}
    private_ip: 10.0.0.20
"""  # noqa: E501


def example_plan() -> str:
    """A commented example plan (it loads as is)."""
    return _EXAMPLE
