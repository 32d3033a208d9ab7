"""``azrestore upload --to URL`` (a page blob, with a journal) stopped between the blob's
creation and its journal's, then the same command run again: it finishes (found by the
upload soak: it said "blob already exists (use --overwrite)", exit 2, for ever, and after
SIGKILL once the lease was taken, the blob kept an infinite lease whose id nobody had).

The gateway holds the request after which the run is stopped for a while: Lease Blob
(the blob created, not leased yet) or the Get Blob Properties that follows it (the blob
leased, its journal not written yet); the run is stopped once the blob is there (and
leased): the moment is exact. Judged from outside: azure-storage-blob reads the blob and
its lease.
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
from tests.support.soak import journal_bytes, scattered_image
from tests.support.storage import StorageTarget


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


@pytest.mark.parametrize("held", ["Other", "GetBlobProperties"], ids=["created", "leased"])
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_stopped_between_the_blob_and_its_journal(
    storage: StorageTarget, gateway: GatewayThread, tmp_path: Path, how: signal.Signals, held: str
) -> None:
    image = scattered_image(tmp_path / "disk.raw", 24 * MiB, 8 * MiB, 4)
    journals = tmp_path / "journals"
    url = storage.sas_url("window.vhd")
    blob = storage.blob_client("window.vhd")
    # Lease Blob is an "Other" request to the gateway: held 3 s, the run waits there.
    gateway.set_rules([FaultRule(operation=held, action="delay", delay=3.0)])

    def there() -> bool:
        if held == "Other":
            return blob.exists()
        return blob.exists() and blob.get_blob_properties().lease.state == "leased"

    child = subprocess.Popen(command(image, url, journals), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while child.poll() is None and not there():
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
    assert journal_bytes(journals) == 0  # the moment: the blob, nothing recorded yet
    gateway.set_rules([])

    again = subprocess.run(
        command(image, url, journals), capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    data = blob.download_blob().readall()
    assert data[:-512] == expected_vhd_body(image) and data[-512:][:8] == b"conectix"
    assert blob.get_blob_properties().lease.state == "available"


def test_someone_elses_blob_is_refused_every_time(storage: StorageTarget, tmp_path: Path) -> None:
    """The journal written before the blob is created is dropped when the blob turns out
    to exist: run again, the upload still refuses the blob, and never writes into it."""
    image = scattered_image(tmp_path / "disk.raw", 24 * MiB, 8 * MiB, 5)
    blob = storage.blob_client("theirs.vhd")
    blob.create_page_blob(24 * MiB + 512)
    blob.upload_page(b"\x07" * 512, offset=0, length=512)
    journals = tmp_path / "journals"
    for _ in range(2):
        refused = subprocess.run(
            command(image, storage.sas_url("theirs.vhd"), journals),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 2 and "blob already exists" in refused.stderr
        assert not any(journals.glob("*.journal"))
    assert blob.download_blob(offset=0, length=1024).readall() == b"\x07" * 512 + bytes(512)
    assert blob.get_blob_properties().lease.state == "available"
