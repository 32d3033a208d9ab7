"""Resource ids and subscriptions shared by the restore-plan tests."""

from __future__ import annotations

SUB = "00000000-0000-0000-0000-000000000000"


OTHER_SUB = "11111111-1111-1111-1111-111111111111"


SUBNET = (
    f"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network"
    "/virtualNetworks/vnet/subnets/default"
)


def vm_id(name: str, sub: str = SUB) -> str:
    group = f"/subscriptions/{sub}/resourceGroups/infra"
    return f"{group}/providers/Microsoft.Compute/virtualMachines/{name}"
