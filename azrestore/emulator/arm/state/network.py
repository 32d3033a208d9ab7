"""Network records (virtual networks, subnets, network interfaces) and their views."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from azrestore.emulator.arm.state.resource import ResourceRecord

__all__ = [
    "IpConfig",
    "NicRecord",
    "NicView",
    "SubnetRecord",
    "SubnetView",
    "VnetRecord",
    "VnetView",
]


@dataclass(frozen=True)
class NicView:
    """A network interface."""

    id: str
    name: str
    resource_group: str
    location: str
    subnet_id: str
    private_ip: str
    vm_id: str | None
    provisioning_state: str


@dataclass(frozen=True)
class SubnetView:
    """A subnet of a virtual network."""

    id: str
    name: str
    address_prefix: str


@dataclass(frozen=True)
class VnetView:
    """A virtual network."""

    id: str
    name: str
    resource_group: str
    location: str
    address_prefixes: tuple[str, ...]
    subnets: tuple[SubnetView, ...]
    provisioning_state: str


@dataclass
class IpConfig:
    """A NIC's IP configuration."""

    name: str
    subnet_id: str
    private_ip: str
    allocation: str
    primary: bool


@dataclass
class NicRecord(ResourceRecord):
    """A network interface."""

    ip_configs: list[IpConfig]
    resource_guid: str
    mac: str
    provisioning_state: str = "Succeeded"
    vm_id: str | None = None

    def view(self) -> NicView:
        """A frozen snapshot."""
        return NicView(
            **self.place(),
            subnet_id=self.ip_configs[0].subnet_id,
            private_ip=self.ip_configs[0].private_ip,
            vm_id=self.vm_id,
            provisioning_state=self.provisioning_state,
        )


@dataclass
class SubnetRecord:
    """A subnet."""

    id: str
    name: str
    address_prefix: str
    provisioning_state: str = "Succeeded"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class VnetRecord(ResourceRecord):
    """A virtual network."""

    address_prefixes: list[str]
    subnets: dict[str, SubnetRecord]
    resource_guid: str
    provisioning_state: str = "Updating"

    def view(self) -> VnetView:
        """A frozen snapshot."""
        return VnetView(
            **self.place(),
            address_prefixes=tuple(self.address_prefixes),
            subnets=tuple(
                SubnetView(id=s.id, name=s.name, address_prefix=s.address_prefix)
                for s in self.subnets.values()
            ),
            provisioning_state=self.provisioning_state,
        )
