"""``azrestore upload --to URL`` (a page blob, with a journal) stopped between the blob's
creation and its journal's, then the same command run again: it should finish, and does
not yet (found by the upload soak; see the xfail reason).

The gateway holds the lease request (Lease Blob, after Put Blob, before the journal is
written) for a while, and the run is stopped once the blob exists: the moment is exact.
Judged from outside: azure-storage-blob reads the blob and its lease.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from azrestore.emulator.storage import FaultRule, GatewayThread
from azrestore.formats.sizes import MiB
from tests.support.images import expected_vhd_body
from tests.support.soak import scattered_image
from tests.support.storage import StorageTarget

BUG = (
    "open_journal (azrestore/transfer/resume.py) creates the blob (sink.prepare: Put Blob),"
    " then leases it, then writes the journal: a run stopped in between leaves a blob that"
    " no journal names, so the same command says 'blob already exists (use --overwrite)',"
    " exit 2, for ever; after SIGKILL once the lease was taken, the blob also keeps an"
    " infinite lease whose id nobody has (--overwrite is refused too, until the lease is"
    " broken by hand)"
)


def command(image: Path, url: str, journals: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "azrestore.cli.app",
        "upload",
        str(image),
        "--to",
        url,
        "--journal-dir",
        str(journals),
    ]


@pytest.mark.xfail(strict=True, reason=BUG)
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_stopped_between_the_blob_and_its_journal(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path, how: signal.Signals
) -> None:
    image = scattered_image(tmp_path / "disk.raw", 24 * MiB, 8 * MiB, 4)
    journals = tmp_path / "journals"
    url = storage.sas_url("window.vhd")
    blob = storage.blob_client("window.vhd")
    # Lease Blob is an "Other" request to the gateway: held 3 s, the run waits there.
    gateway.set_rules([FaultRule(operation="Other", action="delay", delay=3.0)])
    child = subprocess.Popen(command(image, url, journals), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while child.poll() is None and not blob.exists():
            assert time.monotonic() < deadline, "the blob was never created"
            time.sleep(0.005)
        assert child.poll() is None, "the run ended before it was stopped"
        child.send_signal(how)
        child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode in (-signal.SIGKILL, 130)
    assert not any(journals.glob("*.journal"))  # the moment: the blob, no journal yet
    gateway.set_rules([])

    again = subprocess.run(
        command(image, url, journals), capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    data = blob.download_blob().readall()
    assert data[:-512] == expected_vhd_body(image) and data[-512:][:8] == b"conectix"
    assert blob.get_blob_properties().lease.state == "available"
