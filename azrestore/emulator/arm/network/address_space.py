"""Address prefixes of virtual networks and subnets: parsing (CIDR) and the rules subnets
follow inside their network's address space."""

from __future__ import annotations

import ipaddress
from typing import Any

from azrestore.emulator.arm.errors import ArmError

__all__ = ["Network", "check_subnets", "parse_prefix"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_prefix(text: Any, owner: str) -> Network:
    """An address prefix in CIDR notation (400 InvalidAddressPrefixFormat)."""
    try:
        return ipaddress.ip_network(str(text), strict=True)
    except ValueError:
        raise ArmError(
            400,
            "InvalidAddressPrefixFormat",
            f"Address prefix {text} of resource {owner} is not formatted correctly. It should "
            "follow CIDR notation, for example 10.0.0.0/24.",
        ) from None


def check_subnets(vnet_name: str, space: list[Network], subnets: list[tuple[str, Network]]) -> None:
    """Refuse subnets outside the address space, or overlapping each other (400)."""
    for index, (name, network) in enumerate(subnets):
        if not any(
            network.version == outer.version and network.subnet_of(outer)  # type: ignore[arg-type]
            for outer in space
        ):
            raise ArmError(
                400,
                "NetcfgSubnetRangeOutsideVnet",
                f"Subnet '{name}' is not valid because its IP address range is outside the "
                f"IP address range of virtual network '{vnet_name}'.",
            )
        for other_name, other in subnets[:index]:
            if network.overlaps(other):
                raise ArmError(
                    400,
                    "NetcfgSubnetRangesOverlap",
                    f"Subnet '{name}' is not valid because its IP address range overlaps "
                    f"with that of an existing subnet '{other_name}' in virtual network "
                    f"'{vnet_name}'.",
                )
