"""Local stand-ins for Azure: Azurite, the strict storage gateway, the Resource Manager
simulator, and :class:`Emulator`, which runs all three together.

The names below load on first use, so that importing :mod:`azrestore.emulator.storage` or
:mod:`azrestore.emulator.azurite` does not pull in the simulator (TLS, SDK clients).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from azrestore.emulator.arm import (
        ArmFaultRule,
        ArmSimulator,
        RunCommandOutcome,
        RunCommandRule,
        SimulatorState,
        StorageConfig,
    )
    from azrestore.emulator.bundle import Emulator

__all__ = [
    "ArmFaultRule",
    "ArmSimulator",
    "Emulator",
    "RunCommandOutcome",
    "RunCommandRule",
    "SimulatorState",
    "StorageConfig",
]

_HOMES = {
    "Emulator": "azrestore.emulator.bundle",
    "ArmFaultRule": "azrestore.emulator.arm",
    "ArmSimulator": "azrestore.emulator.arm",
    "RunCommandOutcome": "azrestore.emulator.arm",
    "RunCommandRule": "azrestore.emulator.arm",
    "SimulatorState": "azrestore.emulator.arm",
    "StorageConfig": "azrestore.emulator.arm",
}


__getattr__ = lazy_exports(__name__, globals(), _HOMES)
