"""A simulator with its strict gateway and the SDK clients that drive it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.mgmt.network.aio import NetworkManagementClient

from azrestore.emulator.arm import ArmFaultRule, ArmSimulator, RunCommandRule, StorageConfig
from azrestore.emulator.arm.core import ScriptsMode
from azrestore.emulator.azurite import AzuriteProcess
from azrestore.emulator.storage import SasRefusal, StorageGateway

SUB = "11111111-2222-3333-4444-555555555555"
RG = "restore-rg"
LOCATION = "westus"

#: Simulated durations shrink 200-fold: a VM create takes 0.225 s, a disk grant 0.015 s.
TIME_FACTOR = 0.005


class StaticToken:
    """A credential that hands out one static bearer token (the simulator's :attr:`token`:
    it accepts no other)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticToken:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


@dataclass
class ArmEnv:
    """A simulator with its gateway and SDK clients."""

    sim: ArmSimulator
    gateway: StorageGateway
    azurite: AzuriteProcess
    compute: ComputeManagementClient
    network: NetworkManagementClient

    def disk_id(self, name: str) -> str:
        return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/disks/{name}"


@asynccontextmanager
async def arm_env(
    azurite: AzuriteProcess,
    *,
    rules: Sequence[ArmFaultRule] = (),
    run_command_rules: Sequence[RunCommandRule] = (),
    durations: Mapping[str, float] | None = None,
    time_factor: float = TIME_FACTOR,
    scripts: ScriptsMode = "record",
) -> AsyncIterator[ArmEnv]:
    """A simulator on the session's Azurite, its own strict gateway, and SDK clients."""
    holder: list[ArmSimulator] = []

    def sas_check(operation: str, path: str, query: Mapping[str, str]) -> SasRefusal | None:
        return holder[0].sas_check(operation, path, query) if holder else None

    async with StorageGateway(azurite.account_url, sas_check=sas_check) as gateway:
        storage = StorageConfig(
            account_url=azurite.account_url, public_account_url=gateway.account_url
        )
        async with ArmSimulator(
            time_factor=time_factor,
            subscription_id=SUB,
            storage=storage,
            rules=rules,
            run_command_rules=run_command_rules,
            durations=durations,
            scripts=scripts,
        ) as sim:
            holder.append(sim)
            options: dict[str, Any] = {
                "base_url": sim.endpoint,
                "connection_verify": sim.ca_bundle,
            }
            async with (
                ComputeManagementClient(StaticToken(sim.token), SUB, **options) as compute,
                NetworkManagementClient(StaticToken(sim.token), SUB, **options) as network,
            ):
                yield ArmEnv(sim, gateway, azurite, compute, network)


def error_code(exc: HttpResponseError) -> str | None:
    """The ARM error code of an SDK error."""
    return exc.error.code if exc.error is not None else None
