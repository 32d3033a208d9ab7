"""The Resource Manager clients of one run: one credential, and one azure-mgmt-compute and
one azure-mgmt-network aio client per subscription, opened on first use and closed
together."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, TypeVar

import anyio

from .arm import ArmSettings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.mgmt.compute.aio import ComputeManagementClient
    from azure.mgmt.network.aio import NetworkManagementClient

_Client = TypeVar("_Client", "ComputeManagementClient", "NetworkManagementClient")


class ManagementClients:
    """Clients per subscription for one run; use it as an async context manager."""

    def __init__(self, settings: ArmSettings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self._credential: AsyncTokenCredential | None = None
        self._compute: dict[str, ComputeManagementClient] = {}
        self._network: dict[str, NetworkManagementClient] = {}

    async def __aenter__(self) -> ManagementClients:
        self._credential = self.settings.credential()
        self._stack.push_async_callback(self._credential.close)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with anyio.CancelScope(shield=True):
            await self._stack.aclose()

    async def compute(self, subscription: str) -> ComputeManagementClient:
        if subscription not in self._compute:
            from azure.mgmt.compute.aio import ComputeManagementClient

            self._compute[subscription] = await self._open(ComputeManagementClient, subscription)
        return self._compute[subscription]

    async def network(self, subscription: str) -> NetworkManagementClient:
        if subscription not in self._network:
            from azure.mgmt.network.aio import NetworkManagementClient

            self._network[subscription] = await self._open(NetworkManagementClient, subscription)
        return self._network[subscription]

    async def _open(self, client_class: type[_Client], subscription: str) -> _Client:
        """A management client for ``subscription``, closed with the others."""
        assert self._credential is not None, "use ControlPlane as an async context manager"
        client = client_class(self._credential, subscription, **self.settings.client_kwargs())
        return await self._stack.enter_async_context(client)
