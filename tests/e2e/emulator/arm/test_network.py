"""Virtual networks, subnets and network interfaces through the real azure-mgmt-network
aio client."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.network import types as network_types

from tests.support.arm.bodies import request_body
from tests.support.arm.env import LOCATION, RG, ArmEnv, error_code

pytestmark = pytest.mark.anyio


async def test_network_resources(env: ArmEnv) -> None:
    create_vnet = await env.network.virtual_networks.begin_create_or_update(
        RG,
        "net",
        request_body(
            network_types.VirtualNetwork,
            {
                "location": LOCATION,
                "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}},
            },
        ),
    )
    vnet = await create_vnet.result()
    assert vnet.properties is not None
    assert vnet.properties.provisioning_state == "Succeeded" and not vnet.properties.subnets
    create_subnet = await env.network.subnets.begin_create_or_update(
        RG,
        "net",
        "workers",
        request_body(network_types.Subnet, {"properties": {"addressPrefix": "10.1.2.0/24"}}),
    )
    subnet = await create_subnet.result()
    assert subnet.id is not None
    assert subnet.id.endswith("/virtualNetworks/net/subnets/workers")
    assert [s.name async for s in env.network.subnets.list(RG, "net")] == ["workers"]
    with pytest.raises(HttpResponseError) as exc:
        await env.network.subnets.begin_create_or_update(
            RG,
            "net",
            "outside",
            request_body(network_types.Subnet, {"properties": {"addressPrefix": "10.2.0.0/24"}}),
        )
    assert error_code(exc.value) == "NetcfgSubnetRangeOutsideVnet"
    with pytest.raises(HttpResponseError) as exc:
        await env.network.subnets.begin_create_or_update(
            RG,
            "net",
            "overlap",
            request_body(network_types.Subnet, {"properties": {"addressPrefix": "10.1.2.128/25"}}),
        )
    assert error_code(exc.value) == "NetcfgSubnetRangesOverlap"

    async def nic(name: str, config: dict[str, Any]) -> Any:
        poller = await env.network.network_interfaces.begin_create_or_update(
            RG,
            name,
            request_body(
                network_types.NetworkInterface,
                {
                    "location": LOCATION,
                    "properties": {"ipConfigurations": [{"name": "ip", **config}]},
                },
            ),
        )
        return await poller.result()

    first = await nic("a", {"properties": {"subnet": {"id": subnet.id}}})
    second = await nic("b", {"properties": {"subnet": {"id": subnet.id}}})
    addresses = [
        n.properties.ip_configurations[0].properties.private_ip_address for n in (first, second)
    ]
    assert addresses == ["10.1.2.4", "10.1.2.5"]
    static = await nic(
        "c",
        {
            "properties": {
                "subnet": {"id": subnet.id},
                "privateIPAllocationMethod": "Static",
                "privateIPAddress": "10.1.2.50",
            }
        },
    )
    assert static.properties.ip_configurations[0].properties.private_ip_address == "10.1.2.50"
    with pytest.raises(HttpResponseError) as exc:
        await nic(
            "d",
            {
                "properties": {
                    "subnet": {"id": subnet.id},
                    "privateIPAllocationMethod": "Static",
                    "privateIPAddress": "10.1.2.4",
                }
            },
        )
    assert error_code(exc.value) == "PrivateIPAddressInUse"
    with pytest.raises(HttpResponseError) as exc:
        await nic("e", {"properties": {"subnet": {"id": subnet.id + "-missing"}}})
    assert error_code(exc.value) == "InvalidResourceReference"
    with pytest.raises(HttpResponseError) as exc:
        await env.network.subnets.begin_delete(RG, "net", "workers")
    assert error_code(exc.value) == "InUseSubnetCannotBeDeleted"
    subnet = await env.network.subnets.get(RG, "net", "workers")
    assert subnet.properties is not None and subnet.properties.ip_configurations is not None
    assert len(subnet.properties.ip_configurations) == 3
    assert env.sim.state().vnet("net").subnets[0].address_prefix == "10.1.2.0/24"
