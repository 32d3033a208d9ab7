"""The value types of a plan's fields: the choices it offers, sizes as ``parse_size``
reads them, tags, and the forgiving spellings it accepts (``v2``, ``premium_lrs``)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator

from ...formats.sizes import parse_size
from .ids import is_resource_group

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
#: How a VM is created: Trusted Launch where it can be (auto), always, or never.
SecurityChoice = Literal["auto", "trusted_launch", "standard"]

#: Disk SKUs that cannot hold an OS disk.
DATA_ONLY_SKUS = frozenset({"PremiumV2_LRS", "UltraSSD_LRS"})
#: Azure allows 50 tags per resource.
MAX_TAGS = 50

_TAG_FORBIDDEN = re.compile(r"[<>%&\\?/]")


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


def _security(value: Any) -> Any:
    """``TrustedLaunch`` (Azure's spelling) or ``Trusted-Launch`` for ``trusted_launch``."""
    if isinstance(value, str):
        flat = value.strip().lower().replace("-", "").replace("_", "")
        return {"trustedlaunch": "trusted_launch"}.get(flat, value.strip().lower())
    return value


SecurityField = Annotated[SecurityChoice, BeforeValidator(_security)]


def check_resource_group(value: str) -> str:
    """A resource group name, checked."""
    if not is_resource_group(value):
        raise ValueError(
            f"{value!r} is not a resource group name (1-90 letters, digits, '-', '_', '.',"
            " '(' or ')', not ending with '.')"
        )
    return value


def check_tags(tags: dict[str, str]) -> dict[str, str]:
    """Azure's rules on tags: how many, and the names' and values' lengths and letters."""
    if len(tags) > MAX_TAGS:
        raise ValueError(f"{len(tags)} tags; Azure allows at most {MAX_TAGS}")
    for name, value in tags.items():
        if not 1 <= len(name) <= 512 or _TAG_FORBIDDEN.search(name):
            raise ValueError(f"tag name {name!r}: 1-512 characters, none of < > % & \\ ? /")
        if len(value) > 256:
            raise ValueError(f"tag {name!r}: the value is longer than 256 characters")
    return tags
