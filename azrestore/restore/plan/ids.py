"""Azure identifiers as a plan states them: subscription ids, resource group names, and
the resource ids of VMs and subnets (parsed by :class:`~azrestore.azure.resource_id.ResourceId`,
worded here for the plan's messages)."""

from __future__ import annotations

import re

from ...azure.resource_id import ResourceId

#: A resource type as ``(namespace, types)``.
ResourceKind = tuple[str, tuple[str, ...]]

GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")

VM_TYPE: ResourceKind = ("Microsoft.Compute", ("virtualMachines",))
SUBNET_TYPE: ResourceKind = ("Microsoft.Network", ("virtualNetworks", "subnets"))
_PLACEHOLDERS = {"virtualMachines": "vm", "virtualNetworks": "vnet", "subnets": "subnet"}


def is_resource_group(value: str) -> bool:
    """Azure's rule: 1-90 letters, digits, ``-_.()``, not ending with a period."""
    return bool(_RESOURCE_GROUP.match(value)) and not value.endswith(".")


def parse_resource_id(text: str, kind: ResourceKind) -> ResourceId:
    """Parse an Azure resource id of the given ``(namespace, types)``, e.g.
    ``("Microsoft.Network", ("virtualNetworks", "subnets"))``. Case-insensitive, as Azure
    is. Raises ValueError with the expected shape."""
    namespace, types = kind
    wanted = "/".join((namespace, *types))
    shape = f"/subscriptions/<id>/resourceGroups/<group>/providers/{namespace}/" + "/".join(
        f"{kind_}/<{_PLACEHOLDERS.get(kind_, 'name')}>" for kind_ in types
    )
    # One trailing slash is tolerated in a plan.
    parts = ResourceId.split(text.removesuffix("/"))
    if parts is None:
        raise ValueError(f"not an Azure resource id: {text!r} (expected {shape})")
    if not parts.is_type(wanted):
        raise ValueError(f"is a {parts.resource_type} id, not a {wanted} id (expected {shape})")
    if not GUID.match(parts.subscription):
        raise ValueError(f"subscription {parts.subscription!r} in {text!r} is not a GUID")
    if not is_resource_group(parts.resource_group):
        raise ValueError(f"resource group {parts.resource_group!r} in {text!r} is not valid")
    return parts


def vm_id(value: str) -> str:
    """A VM's resource id, checked."""
    parse_resource_id(value, VM_TYPE)
    return value


def subnet_id(value: str) -> str:
    """A subnet's resource id, checked."""
    parse_resource_id(value, SUBNET_TYPE)
    return value
