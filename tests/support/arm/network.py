"""Network building blocks: a virtual network with a subnet and a NIC in it."""

from __future__ import annotations

from typing import Any

from azure.mgmt.network import types as network_types

from tests.support.arm.bodies import request_body
from tests.support.arm.env import LOCATION, RG, ArmEnv


async def make_network(env: ArmEnv, nic_name: str = "nic") -> tuple[Any, Any]:
    """A virtual network with one subnet and a NIC in it (creating the vnet once)."""
    try:
        vnet = await env.network.virtual_networks.get(RG, "vnet")
    except Exception:
        poller = await env.network.virtual_networks.begin_create_or_update(
            RG,
            "vnet",
            request_body(
                network_types.VirtualNetwork,
                {
                    "location": LOCATION,
                    "properties": {
                        "addressSpace": {"addressPrefixes": ["10.10.0.0/16"]},
                        "subnets": [
                            {"name": "default", "properties": {"addressPrefix": "10.10.1.0/24"}}
                        ],
                    },
                },
            ),
        )
        vnet = await poller.result()
    assert vnet.properties is not None and vnet.properties.subnets is not None
    subnet_id = vnet.properties.subnets[0].id
    create_nic = await env.network.network_interfaces.begin_create_or_update(
        RG,
        nic_name,
        request_body(
            network_types.NetworkInterface,
            {
                "location": LOCATION,
                "properties": {
                    "ipConfigurations": [
                        {"name": "ipconfig1", "properties": {"subnet": {"id": subnet_id}}}
                    ]
                },
            },
        ),
    )
    return vnet, await create_nic.result()
