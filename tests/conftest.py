"""Shared fixtures: the anyio backend, one Azurite and one strict gateway per test session.

Tests that do not ask for ``azurite``, ``gateway`` or ``storage`` never start Azurite.
Everything under ``tests/e2e/`` carries the ``e2e`` mark, so ``-m "not e2e"`` is the unit run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from hypothesis import settings

from azrestore.emulator.azurite import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    AzuriteProcess,
    EmulatorError,
    find_azurite,
)
from azrestore.emulator.storage import GatewayThread, NetworkModel
from tests.support.storage import StorageTarget
from tests.support.tools import require, unavailable

E2E_FOLDER = Path(__file__).parent / "e2e"

# CI runs each property test on a fixed seed, so that a landing never fails on a draw no
# one can replay; a developer's run explores new draws (and keeps failures in .hypothesis).
# No profile has a deadline: on a shared 2-core machine an example's time says nothing about
# the code (speed is measured in benchmarks/, never asserted in a test).
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, database=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under ``tests/e2e/`` as ``e2e``: the folder decides, not each file."""
    for item in items:
        if item.path.is_relative_to(E2E_FOLDER):
            item.add_marker(pytest.mark.e2e)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked ``tools`` (``tests.support.tools.needs``) skips without them; in CI it
    fails."""
    for mark in item.iter_markers("tools"):
        require(*mark.args)


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
    """One Azurite for the whole session (skips the test if Azurite or Node is missing; in
    CI, fails it)."""
    try:
        find_azurite()
    except EmulatorError as exc:
        unavailable(str(exc))
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
    """Give each test that uses the gateway no fault rules, a loopback link without
    targets, and zeroed statistics."""
    if "gateway" not in request.fixturenames:
        yield
        return
    thread: GatewayThread = request.getfixturevalue("gateway")
    thread.set_rules(())
    thread.set_network(NetworkModel())
    thread.reset_statistics()
    yield
    thread.set_rules(())
    thread.set_network(NetworkModel())


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
