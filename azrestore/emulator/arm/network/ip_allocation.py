"""Private IP allocation in a subnet, as Azure does it: the first four addresses of a subnet
and its last are reserved, Dynamic takes the lowest free one, Static must be free and in
the subnet."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from azrestore.emulator.arm.errors import ArmError
from azrestore.emulator.arm.request_bodies import required
from azrestore.emulator.arm.resource_ids import id_key
from azrestore.emulator.arm.state.network import IpConfig, SubnetRecord
from azrestore.emulator.arm.state.registry import Registry

__all__ = ["allocate_private_ip"]


def _used_ips(registry: Registry, subnet_id: str, exclude: str) -> dict[str, str]:
    return {
        config.private_ip: nic.id
        for nic in registry.nics.values()
        if id_key(nic.id) != id_key(exclude)
        for config in nic.ip_configs
        if id_key(config.subnet_id) == id_key(subnet_id)
    }


def allocate_private_ip(
    registry: Registry,
    nic_id: str,
    config_name: str,
    subnet: SubnetRecord,
    spec: Mapping[str, Any],
    current: IpConfig | None,
) -> tuple[str, str]:
    """The private IP and allocation method (Dynamic or Static) of IP configuration
    ``config_name`` of NIC ``nic_id`` in ``subnet``, as ``spec`` asks (``current``: the
    configuration before this request, whose Dynamic address stays)."""
    network = ipaddress.ip_network(subnet.address_prefix)
    used = _used_ips(registry, subnet.id, nic_id)
    method = str(spec.get("privateIPAllocationMethod") or "Dynamic")
    method = "Static" if method.lower() == "static" else "Dynamic"
    config_id = f"{nic_id}/ipConfigurations/{config_name}"
    # Azure reserves the first four addresses of a subnet and its last one.
    first = int(network.network_address) + 4
    last = int(network.broadcast_address) - 1
    if method == "Static":
        text = str(required(spec, "privateIPAddress", "ipConfigurations.privateIPAddress"))
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise ArmError(
                400, "InvalidPrivateIPAddress", f"The private IP address {text} is not valid."
            ) from None
        if address.version != network.version or not first <= int(address) <= last:
            raise ArmError(
                400,
                "PrivateIPAddressNotInSubnet",
                f"IP configuration {config_id} is using the private IP address {text} which "
                f"is not in the range of subnet {subnet.id}.",
            )
        if str(address) in used:
            raise ArmError(
                400,
                "PrivateIPAddressInUse",
                f"IP configuration {config_id} is using the private IP address {text} which "
                f"is already allocated to resource {used[str(address)]}.",
            )
        return str(address), method
    if current is not None and id_key(current.subnet_id) == id_key(subnet.id):
        return current.private_ip, method
    for number in range(first, min(last, first + len(used) + 1) + 1):
        candidate = str(type(network.network_address)(number))
        if candidate not in used:
            return candidate, method
    raise ArmError(
        400,
        "SubnetIsFull",
        f"Subnet {subnet.name} with address prefix {subnet.address_prefix} does not have "
        "enough capacity for 1 IP addresses.",
    )
