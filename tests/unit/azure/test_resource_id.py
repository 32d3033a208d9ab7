"""Azure resource ids: the shape, top-level ids of an expected type, and child resources."""

from __future__ import annotations

import pytest

from azrestore.azure.resource_id import ResourceId
from azrestore.errors import InputError

SUB = "00000000-0000-0000-0000-000000000000"
SUBNET = (
    f"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network"
    "/virtualNetworks/vnet/subnets/default"
)


def vm_id(name: str) -> str:
    group = f"/subscriptions/{SUB}/resourceGroups/infra"
    return f"{group}/providers/Microsoft.Compute/virtualMachines/{name}"


def test_split_pairs_types_and_names() -> None:
    rid = ResourceId.split(SUBNET)
    assert rid is not None
    assert (rid.subscription, rid.resource_group, rid.namespace) == (
        SUB,
        "net",
        "Microsoft.Network",
    )
    assert (rid.types, rid.names, rid.name) == (
        ("virtualNetworks", "subnets"),
        ("vnet", "default"),
        "default",
    )
    assert rid.resource_type == "Microsoft.Network/virtualNetworks/subnets"
    assert rid.is_type("microsoft.network/VIRTUALNETWORKS/subnets")
    assert str(rid) == SUBNET
    for text in ("default", SUBNET + "/", SUBNET + "/extra", SUBNET.replace("/vnet/", "//")):
        assert ResourceId.split(text) is None


def test_parse_a_top_level_resource_of_a_type() -> None:
    rid = ResourceId.parse(f" {vm_id('web01')} ", expected="Microsoft.Compute/virtualMachines")
    assert (rid.name, str(rid)) == ("web01", vm_id("web01"))
    with pytest.raises(InputError, match="not a resource id"):
        ResourceId.parse(SUBNET, expected="Microsoft.Network/virtualNetworks")
    with pytest.raises(InputError, match=r"not a Microsoft\.Compute/disks resource id"):
        ResourceId.parse(vm_id("web01"), expected="Microsoft.Compute/disks")
