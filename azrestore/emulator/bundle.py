"""The whole local Azure: Azurite, the strict storage gateway and the Resource Manager simulator.

``async with Emulator(time_factor=0.01) as emulator:`` starts all three on 127.0.0.1 (Azurite as
a child process, the gateway and the simulator on the running event loop);
:meth:`Emulator.info` tells clients where they are, and ``info()["env"]`` holds the
environment variables that point every azrestore command at them.  Leaving the block stops
everything (operations cancelled, disk blobs deleted, Azurite's process group ended).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from azrestore.emulator.arm import (
    DEFAULT_SUBSCRIPTION,
    ArmFaultRule,
    ArmSimulator,
    RunCommandRule,
    StorageConfig,
)
from azrestore.emulator.arm.core import ScriptsMode
from azrestore.emulator.azurite import AZURITE_ACCOUNT, AZURITE_KEY, AzuriteProcess
from azrestore.emulator.guest.availability import sandbox_unavailable
from azrestore.emulator.lifecycle import AsyncStartStop
from azrestore.emulator.storage import FaultRule, NetworkModel, SasRefusal, StorageGateway

__all__ = ["Emulator"]


class Emulator(AsyncStartStop):
    """Azurite + strict gateway + ARM simulator (async context manager).

    ``time_factor`` scales the simulated durations of Resource Manager operations;
    ``arm_rules`` and ``storage_rules`` are fault rules for the simulator and the gateway;
    ``run_command_rules`` script run commands; ``durations`` override simulated durations.
    Ports default to free ones. The Resource Manager simulator accepts only the bearer token
    ``token`` (a random one for each emulator when not given), which :meth:`info` hands out
    as ``AZRESTORE_ARM_TOKEN``.

    ``scripts`` says what a Linux VM's RunShellScript that no rule matches does: ``run``
    runs it for real as root in a guest sandbox over its data disks (start fails where the
    machine cannot: not root, no loop devices), ``record`` only marks the data disks
    prepared, ``auto`` (the default) runs where the machine can and records elsewhere,
    saying why once (a logged warning, and :meth:`info`'s ``scripts``).

    ``network`` puts a link between clients and the storage gateway, and Azure's
    scalability targets (:class:`~azrestore.emulator.storage.NetworkModel`; the default is
    loopback, no targets).
    """

    def __init__(
        self,
        *,
        time_factor: float = 1.0,
        subscription_id: str = DEFAULT_SUBSCRIPTION,
        arm_rules: Sequence[ArmFaultRule] = (),
        storage_rules: Sequence[FaultRule] = (),
        run_command_rules: Sequence[RunCommandRule] = (),
        durations: Mapping[str, float] | None = None,
        arm_port: int = 0,
        gateway_port: int = 0,
        azurite_port: int = 0,
        token: str | None = None,
        scripts: ScriptsMode = "auto",
        network: NetworkModel | None = None,
    ) -> None:
        if scripts not in ("run", "record", "auto"):
            raise ValueError(f"scripts must be run, record or auto, not {scripts!r}")
        self._scripts = scripts
        self._network = network or NetworkModel()
        self._time_factor = time_factor
        self._subscription_id = subscription_id
        self._arm_rules = tuple(arm_rules)
        self._storage_rules = tuple(storage_rules)
        self._run_command_rules = tuple(run_command_rules)
        self._durations = dict(durations or {})
        self._arm_port = arm_port
        self._gateway_port = gateway_port
        self._azurite_port = azurite_port
        self._token = token
        self._stack: contextlib.AsyncExitStack | None = None
        self._azurite: AzuriteProcess | None = None
        self._gateway: StorageGateway | None = None
        self._arm: ArmSimulator | None = None

    @property
    def azurite(self) -> AzuriteProcess:
        """The Azurite process."""
        if self._azurite is None:
            raise RuntimeError("the emulator is not started")
        return self._azurite

    @property
    def gateway(self) -> StorageGateway:
        """The strict storage gateway (its rules can be changed while running)."""
        if self._gateway is None:
            raise RuntimeError("the emulator is not started")
        return self._gateway

    @property
    def arm(self) -> ArmSimulator:
        """The Resource Manager simulator (state, log, rules)."""
        if self._arm is None:
            raise RuntimeError("the emulator is not started")
        return self._arm

    def _sas_check(self, operation: str, path: str, query: Mapping[str, str]) -> SasRefusal | None:
        arm = self._arm
        return arm.sas_check(operation, path, query) if arm is not None else None

    async def start(self) -> None:
        """Start Azurite, the gateway and the simulator (in that order)."""
        if self._stack is not None:
            return
        if self._scripts != "record":
            # Probed once, off the event loop; later answers come from the cache.
            reason = await anyio.to_thread.run_sync(sandbox_unavailable)
            if reason is not None and self._scripts == "run":
                raise RuntimeError(f"scripts='run', but guest scripts cannot run here: {reason}")
        stack = contextlib.AsyncExitStack()
        self._stack = stack
        try:
            azurite = AzuriteProcess(port=self._azurite_port)
            await stack.enter_async_context(azurite)
            self._azurite = azurite
            gateway = StorageGateway(
                azurite.account_url,
                port=self._gateway_port,
                rules=self._storage_rules,
                sas_check=self._sas_check,
                network=self._network,
            )
            await stack.enter_async_context(gateway)
            self._gateway = gateway
            arm = ArmSimulator(
                time_factor=self._time_factor,
                subscription_id=self._subscription_id,
                storage=StorageConfig(
                    account_url=azurite.account_url, public_account_url=gateway.account_url
                ),
                rules=self._arm_rules,
                run_command_rules=self._run_command_rules,
                durations=self._durations,
                port=self._arm_port,
                # Azurite's data goes with it.
                delete_blobs_on_close=False,
                token=self._token,
                scripts=self._scripts,
            )
            await stack.enter_async_context(arm)
            self._arm = arm
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop everything (simulator, gateway, Azurite); idempotent."""
        stack, self._stack = self._stack, None
        try:
            if stack is not None:
                await stack.aclose()
        finally:
            self._arm = self._gateway = None
            self._azurite = None

    def scripts(self) -> dict[str, Any]:
        """How Linux run command scripts are answered: ``{"mode", "run", "reason"}``."""
        reason = None if self._scripts == "record" else sandbox_unavailable()
        return {
            "mode": self._scripts,
            "run": self._scripts != "record" and reason is None,
            "reason": reason,
        }

    def info(self) -> dict[str, Any]:
        """Where everything is, and the environment that points azrestore at it.

        Keys: ``arm_endpoint``, ``blob_endpoint`` (the account URL through the gateway),
        ``storage_connection_string`` (through the gateway), ``ca_bundle``,
        ``subscription_id``, ``storage_account_id`` (for disk Import), ``token``,
        ``azurite_blob_endpoint`` (direct, bypassing the gateway), ``time_factor``, ``env``,
        ``scripts`` (``mode``; ``run``: whether Linux scripts run for real; ``reason``: why
        not, when they could not), ``network`` (the storage link and targets in words:
        ``link``, ``blob_targets``, ``account_targets``).
        """
        arm, gateway, azurite = self.arm, self.gateway, self.azurite
        connection_string = (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={gateway.account_url};"
        )
        return {
            "arm_endpoint": arm.endpoint,
            "blob_endpoint": gateway.account_url,
            "storage_connection_string": connection_string,
            "ca_bundle": arm.ca_bundle,
            "subscription_id": arm.subscription_id,
            "storage_account_id": arm.storage_account_id,
            "token": arm.token,
            "azurite_blob_endpoint": azurite.account_url,
            "time_factor": arm.time_factor,
            "scripts": self.scripts(),
            "network": gateway.network.describe(),
            "env": {
                "AZRESTORE_ARM_ENDPOINT": arm.endpoint,
                "AZRESTORE_CA_BUNDLE": arm.ca_bundle,
                "AZRESTORE_ARM_TOKEN": arm.token,
                "AZURE_SUBSCRIPTION_ID": arm.subscription_id,
                "AZURE_STORAGE_CONNECTION_STRING": connection_string,
                "AZRESTORE_STORAGE_ACCOUNT_ID": arm.storage_account_id,
            },
        }
