"""The strict gateway on its own thread."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from azrestore.emulator.azurite import AzuriteProcess
from azrestore.emulator.storage import GatewayThread

if TYPE_CHECKING:
    pass

pytestmark = pytest.mark.anyio


def test_gateway_thread_start_stop_idempotent(azurite: AzuriteProcess) -> None:
    thread = GatewayThread(azurite.account_url)
    thread.start()
    thread.start()
    url = thread.account_url
    thread.stop()
    thread.stop()
    with pytest.raises(RuntimeError):
        thread.statistics()
    assert url.startswith("http://127.0.0.1:")
