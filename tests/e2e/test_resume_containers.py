"""An upload from a container image (and a differencing VHD) killed with SIGKILL midway,
then the same command: it continues and the blob ends identical to what qemu reads of
the image (the differencing VHD's top view); a backing file (a parent) changed in between
is refused (a real ``azrestore upload`` through the strict gateway into Azurite; qemu-img
is the judge of what the image holds)."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import VhdFooter
from azrestore.transfer.journal import journal_path
from tests.e2e.test_resume import upload_command, wait_for_journal, wait_for_records
from tests.support.differencing import make_vhd_child
from tests.support.images import make_sparse_image
from tests.support.qemu import convert, create, qemu_io, raw_view
from tests.support.storage import StorageTarget
from tests.support.tools import needs

pytestmark = needs("qemu-img", "qemu-io", "qemu-nbd")
SIZE = 40 * MiB + 3 * 512  # not a MiB multiple


def _base(tmp_path: Path) -> Path:
    rng = random.Random(7)
    chunks = [(offset, rng.randbytes(3 * MiB)) for offset in range(0, 36 * MiB, 4 * MiB)]
    chunks.append((SIZE - 512, b"L" * 512))  # the last sector
    return make_sparse_image(tmp_path / "base.raw", SIZE, chunks)


def qcow2_chain(tmp_path: Path) -> tuple[Path, str]:
    """base.qcow2 <- top.qcow2, the top overwriting and discarding parts of the base."""
    base = convert(_base(tmp_path), tmp_path / "base.qcow2", "qcow2")
    top = create(tmp_path / "top.qcow2", "qcow2", None, backing=base, backing_format="qcow2")
    qemu_io(top, "qcow2", "write -P 0x5a 1M 2M", "write -z 9M 1M", "write -P 0x33 30M 64k")
    return top, "qcow2"


def vmdk(tmp_path: Path) -> tuple[Path, str]:
    image = convert(_base(tmp_path), tmp_path / "disk.vmdk", "vmdk", "subformat=monolithicSparse")
    return image, "vmdk"


def assert_blob_is_view(storage: StorageTarget, name: str, view: bytes) -> None:
    data = storage.blob_client(name).download_blob().readall()
    padded = -(-len(view) // MiB) * MiB
    assert len(data) == padded + 512
    assert data[: len(view)] == view, "the blob differs from qemu's view of the image"
    assert not any(data[len(view) : padded])
    assert VhdFooter.parse(data[-512:]).current_size == padded


def _killed_midway(image: Path, url: str, journals: Path) -> None:
    """Start the upload slowly, SIGKILL it once its journal has a few records."""
    args = upload_command(image, url, journals, "--max-bandwidth", "8MiB")
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        journal = journal_path(journals, url.split("?", 1)[0])
        wait_for_journal(journal, child)
        wait_for_records(journal, child, 4)
        assert child.poll() is None, "the upload ended before it could be killed"
        child.send_signal(signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=60)
    _wait_until_no_qemu_nbd(image)


def _wait_until_no_qemu_nbd(image: Path, within: float = 60.0) -> None:
    """The killed run's qemu-nbd (not persistent) exits once its last client is gone, but
    in its own time: until then it holds the image's lock (seen on a busy machine)."""
    deadline = time.monotonic() + within
    while (
        subprocess.run(
            ["pgrep", "-f", f"qemu-nbd.*{re.escape(str(image))}"], capture_output=True
        ).returncode
        == 0
    ):
        assert time.monotonic() < deadline, f"the killed run's qemu-nbd still serves {image}"
        time.sleep(0.05)


@pytest.mark.parametrize("make", [qcow2_chain, vmdk], ids=["qcow2-chain", "vmdk"])
def test_killed_upload_from_a_container_continues_identical(
    storage: StorageTarget, tmp_path: Path, make: Callable[[Path], tuple[Path, str]]
) -> None:
    image, fmt = make(tmp_path)
    journals = tmp_path / "journals"
    url = storage.sas_url("resumed.vhd")
    _killed_midway(image, url, journals)
    again = subprocess.run(
        upload_command(image, url, journals), capture_output=True, text=True, timeout=180
    )
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["bytes_resumed"] > 0, report  # the killed run's work was kept
    assert_blob_is_view(storage, "resumed.vhd", raw_view(image, fmt))
    # No qemu-nbd outlives the uploads.
    left = subprocess.run(
        ["pgrep", "-f", f"qemu-nbd.*{re.escape(str(image))}"], capture_output=True
    )
    assert left.returncode == 1, left.stdout


def test_a_changed_backing_file_is_refused(storage: StorageTarget, tmp_path: Path) -> None:
    top, _ = qcow2_chain(tmp_path)
    journals = tmp_path / "journals"
    url = storage.sas_url("chain.vhd")
    _killed_midway(top, url, journals)
    qemu_io(tmp_path / "base.qcow2", "qcow2", "write -P 0x77 20M 4k")  # under the top
    refused = subprocess.run(
        upload_command(top, url, journals), capture_output=True, text=True, timeout=180
    )
    assert refused.returncode == 2, refused.stderr
    line = refused.stderr.strip()
    assert len(refused.stderr.splitlines()) == 1 and "cannot be continued" in line, line
    assert "base.qcow2" in line, line
    assert "sig=" not in line.replace("sig=REDACTED", "")


def vhd_differencing(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A differencing VHD over a fixed VHD of the random base: (child, parent, the view
    it reads as)."""
    parent = convert(
        _base(tmp_path), tmp_path / "parent.vhd", "vpc", "subformat=fixed", "force_size=on"
    )
    child = create(tmp_path / "child.vhd", "vpc", SIZE, "subformat=dynamic", "force_size=on")
    qemu_io(child, "vpc", "write -P 0x5a 1M 2M", "write -P 0x33 30M 64k")
    view = make_vhd_child(
        child, parent, raw_view(parent, "vpc"), cleared=range(2048, 2100), relative="parent.vhd"
    )
    return child, parent, view


def test_killed_upload_from_a_differencing_vhd_continues_identical(
    storage: StorageTarget, tmp_path: Path
) -> None:
    child, _, view = vhd_differencing(tmp_path)
    journals = tmp_path / "journals"
    url = storage.sas_url("differencing.vhd")
    _killed_midway(child, url, journals)
    again = subprocess.run(
        upload_command(child, url, journals), capture_output=True, text=True, timeout=180
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["bytes_resumed"] > 0
    assert_blob_is_view(storage, "differencing.vhd", view)


def test_a_changed_parent_of_a_differencing_vhd_is_refused(
    storage: StorageTarget, tmp_path: Path
) -> None:
    child, parent, _ = vhd_differencing(tmp_path)
    journals = tmp_path / "journals"
    url = storage.sas_url("differencing-changed.vhd")
    _killed_midway(child, url, journals)
    with parent.open("r+b") as handle:  # its data, under the child; its Unique Id kept
        handle.seek(20 * MiB)
        handle.write(b"\x77" * 4096)
    refused = subprocess.run(
        upload_command(child, url, journals), capture_output=True, text=True, timeout=180
    )
    assert refused.returncode == 2, refused.stderr
    line = refused.stderr.strip()
    assert len(refused.stderr.splitlines()) == 1 and "cannot be continued" in line, line
    assert "parent.vhd" in line, line
