"""The strict gateway as a process: ``python -m azrestore.emulator.storage``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from azrestore.emulator.azurite import AzuriteProcess
from azrestore.formats.sizes import MiB
from tests.support.pages import VERSION

if TYPE_CHECKING:
    from tests.support.storage import StorageTarget

pytestmark = pytest.mark.anyio


def test_gateway_command_line(storage: StorageTarget, azurite: AzuriteProcess) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "azrestore.emulator.storage",
            "--upstream",
            azurite.account_url,
            "--rule",
            "GetBlobProperties:status=500,nth=1",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        url = ready["account_url"]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/devstoreaccount1")
        storage.blob_client("cli").create_page_blob(MiB)
        sas = storage.sas_url("cli").replace(storage.account_url, url)
        request = urllib.request.Request(sas, method="HEAD", headers=VERSION)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=30)
        assert info.value.code == 500
        info.value.close()
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_gateway_command_line_takes_a_link_and_targets(
    storage: StorageTarget, azurite: AzuriteProcess
) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "azrestore.emulator.storage",
            "--upstream",
            azurite.account_url,
            "--link",
            "rtt=1ms",
            "--blob-targets",
            "requests=0.01/s,burst=100s",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert process.stdout is not None
        url = json.loads(process.stdout.readline())["account_url"]
        storage.blob_client("linked").create_page_blob(MiB)
        sas = storage.sas_url("linked").replace(storage.account_url, url)
        request = urllib.request.Request(sas, method="HEAD", headers=VERSION)
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        # The blob's one request per 100 s is spent: the next is ServerBusy, with the wait.
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=30)
        assert info.value.code == 503
        assert info.value.headers["x-ms-error-code"] == "ServerBusy"
        assert 90 < int(info.value.headers["Retry-After"]) <= 100
        info.value.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_gateway_command_line_refuses_a_bad_link(azurite: AzuriteProcess) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "azrestore.emulator.storage", "--upstream",
         azurite.account_url, "--link", "rtt=fast"],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[3],
    )  # fmt: skip
    assert done.returncode == 2
    assert "link spec 'rtt=fast': rtt: not a duration" in done.stderr
