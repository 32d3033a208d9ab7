"""Resource ids as a plan states them."""

from __future__ import annotations

import re

import pytest

from azrestore.restore.plan import parse_resource_id
from tests.support.plans import SUB, SUBNET, vm_id


def test_parse_resource_id() -> None:
    parts = parse_resource_id(SUBNET, ("Microsoft.Network", ("virtualNetworks", "subnets")))
    assert parts.subscription == SUB and parts.resource_group == "net"
    assert parts.names == ("vnet", "default") and parts.name == "default"
    lower = SUBNET.lower()  # ids are case-insensitive
    assert (
        parse_resource_id(lower, ("Microsoft.Network", ("virtualNetworks", "subnets"))).name
        == "default"
    )
    with pytest.raises(
        ValueError,
        match=re.escape(
            "expected /subscriptions/<id>/resourceGroups/<group>/providers"
            "/Microsoft.Compute/virtualMachines/<vm>"
        ),
    ):
        parse_resource_id("/subscriptions/x", ("Microsoft.Compute", ("virtualMachines",)))
    with pytest.raises(ValueError, match="not an Azure resource id"):
        parse_resource_id(vm_id("a") + "/extra", ("Microsoft.Compute", ("virtualMachines",)))
