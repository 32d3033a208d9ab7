"""A fresh container on Azurite for one test, reachable through the gateway or directly
(the ``storage`` fixture of ``tests/conftest.py`` hands these out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from azure.storage.blob import BlobClient, generate_blob_sas

from azrestore.emulator.azurite import AZURITE_ACCOUNT, AZURITE_KEY


@dataclass
class StorageTarget:
    """A fresh container on Azurite, reachable through the gateway or directly."""

    container: str
    account_url: str
    direct_account_url: str
    connection_string: str
    direct_connection_string: str
    account_name: str = AZURITE_ACCOUNT
    account_key: str = AZURITE_KEY
    _clients: list[BlobClient] = field(default_factory=list, repr=False)

    def blob_url(self, name: str) -> str:
        """The blob's URL on the gateway, without credentials."""
        return f"{self.account_url}/{self.container}/{name}"

    def sas_url(
        self,
        name: str,
        expiry: datetime | timedelta = timedelta(hours=1),
        permission: str = "racwd",
        start: datetime | None = None,
    ) -> str:
        """The blob's URL on the gateway with a SAS (``expiry`` absolute, or from now)."""
        if isinstance(expiry, timedelta):
            expiry = datetime.now(UTC) + expiry
        sas = generate_blob_sas(
            self.account_name,
            self.container,
            name,
            account_key=self.account_key,
            permission=permission,
            expiry=expiry,
            start=start,
        )
        return f"{self.blob_url(name)}?{sas}"

    def blob_client(self, name: str) -> BlobClient:
        """A sync client straight to Azurite (bypassing the gateway), for setup and checks."""
        client = BlobClient.from_connection_string(
            self.direct_connection_string, self.container, name
        )
        self._clients.append(client)
        return client

    def close(self) -> None:
        """Close the clients handed out."""
        for client in self._clients:
            client.close()
        self._clients.clear()
