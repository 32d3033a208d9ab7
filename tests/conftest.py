"""Shared fixtures: the anyio backend, one Azurite and one strict gateway per test session.

Tests that do not ask for ``azurite``, ``gateway`` or ``storage`` never start Azurite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import BlobClient, BlobServiceClient, generate_blob_sas
from hypothesis import settings

from azrestore.emulator.azurite import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    AzuriteProcess,
    EmulatorError,
    find_azurite,
)
from azrestore.emulator.gateway import GatewayThread

# CI runs each property test on a fixed seed, so that a landing never fails on a draw no
# one can replay; a developer's run explores new draws (and keeps failures in .hypothesis).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _journal_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resume journals go to a temporary state directory, never the user's."""
    monkeypatch.setenv("AZRESTORE_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio only."""
    return "asyncio"


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteProcess]:
    """One Azurite for the whole session (skips the test if Azurite or Node is missing)."""
    try:
        find_azurite()
    except EmulatorError as exc:
        pytest.skip(str(exc))
    with AzuriteProcess() as process:
        yield process


@pytest.fixture(scope="session")
def gateway(azurite: AzuriteProcess) -> Iterator[GatewayThread]:
    """The strict gateway in front of the session's Azurite, on its own thread.

    Rules and statistics are reset around every test that uses it (see ``_clean_gateway``).
    """
    with GatewayThread(azurite.account_url) as thread:
        yield thread


@pytest.fixture(autouse=True)
def _clean_gateway(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give each test that uses the gateway no fault rules and zeroed statistics."""
    if "gateway" not in request.fixturenames:
        yield
        return
    thread: GatewayThread = request.getfixturevalue("gateway")
    thread.set_rules(())
    thread.reset_statistics()
    yield
    thread.set_rules(())


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


@pytest.fixture
def storage(azurite: AzuriteProcess, gateway: GatewayThread) -> Iterator[StorageTarget]:
    """A new container (created straight on Azurite) for one test; deleted afterwards."""
    name = f"t{uuid.uuid4().hex}"
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        service.create_container(name)
        target = StorageTarget(
            container=name,
            account_url=gateway.account_url,
            direct_account_url=azurite.account_url,
            connection_string=(
                f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};BlobEndpoint={gateway.account_url};"
            ),
            direct_connection_string=azurite.connection_string,
        )
        try:
            yield target
        finally:
            target.close()
            # Frees Azurite's disk space; benchmarks upload many GiB.
            service.delete_container(name)
