"""A snapshot of everything the simulator holds, as tests and ``GET /_emulator/state``
read it (:meth:`SimulatorState.to_json` is that endpoint's body)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azrestore.emulator.arm.state.disks import DiskView
from azrestore.emulator.arm.state.network import NicView, VnetView
from azrestore.emulator.arm.state.operations import OperationView
from azrestore.emulator.arm.state.vms import RunCommandView, VmView

__all__ = ["SimulatorState"]


def _find(items: Mapping[str, Any], name: str, what: str) -> Any:
    found = [item for item in items.values() if item.name.lower() == name.lower()]
    if len(found) != 1:
        raise KeyError(f"{len(found)} {what} named {name!r}")
    return found[0]


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class SimulatorState:
    """A snapshot of everything the simulator holds (mappings keyed by resource id)."""

    disks: Mapping[str, DiskView]
    virtual_machines: Mapping[str, VmView]
    network_interfaces: Mapping[str, NicView]
    virtual_networks: Mapping[str, VnetView]
    run_commands: tuple[RunCommandView, ...]
    operations: tuple[OperationView, ...]

    def disk(self, name: str) -> DiskView:
        """The one disk named ``name`` (any resource group); KeyError if none or several."""
        disk: DiskView = _find(self.disks, name, "disks")
        return disk

    def vm(self, name: str) -> VmView:
        """The one VM named ``name``."""
        vm: VmView = _find(self.virtual_machines, name, "virtual machines")
        return vm

    def nic(self, name: str) -> NicView:
        """The one network interface named ``name``."""
        nic: NicView = _find(self.network_interfaces, name, "network interfaces")
        return nic

    def vnet(self, name: str) -> VnetView:
        """The one virtual network named ``name``."""
        vnet: VnetView = _find(self.virtual_networks, name, "virtual networks")
        return vnet

    def to_json(self) -> dict[str, Any]:
        """The snapshot as JSON-ready data (datetimes as ISO 8601)."""
        data: dict[str, Any] = _jsonable(self)
        return data
