"""Azurite as a child process."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest
from azure.storage.blob import BlobServiceClient

from azrestore.emulator.azurite import AzuriteProcess, EmulatorError, find_azurite

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.anyio


async def test_azurite_process_lifecycle() -> None:
    try:
        find_azurite()
    except EmulatorError as exc:
        pytest.skip(str(exc))
    process = AzuriteProcess()
    async with process:
        port = process.port
        assert process.running
        assert process.account_url == f"http://127.0.0.1:{port}/devstoreaccount1"
        assert f"BlobEndpoint={process.account_url};" in process.connection_string
        with BlobServiceClient.from_connection_string(process.connection_string) as service:
            service.create_container("life")
            assert [c.name for c in service.list_containers()] == ["life"]
    assert not process.running
    process.stop()
    with pytest.raises(EmulatorError):
        _ = process.port
    with pytest.raises(OSError):
        await anyio.connect_tcp("127.0.0.1", port)
