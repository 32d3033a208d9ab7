"""What a user can get wrong with a container image is one InputError line naming the file
(a missing backing file with the file naming it, a loop, encryption, truncation, an
unsupported subformat), and no qemu-nbd is ever left running: close() stops it, a failed
open leaves none, and one that dies mid-read is a SourceError saying so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from azrestore.errors import InputError, SourceError
from azrestore.sources.open import open_source
from azrestore.sources.qemu import ContainerImage
from azrestore.sources.qemu import image as qemu_image
from tests.support.qemu import (
    AWKWARD_SIZE,
    convert,
    create,
    encrypted_qcow2,
    pattern_raw,
    qemu_io,
    run,
)
from tests.support.tools import needs

pytestmark = [needs("qemu-img", "qemu-io", "qemu-nbd"), pytest.mark.anyio]


async def refused(image: Path | str) -> str:
    with pytest.raises(InputError) as caught:
        source = await open_source(image)
        source.close()
    message = str(caught.value)
    assert "\n" not in message
    return message


def qemu_nbd_children() -> list[int]:
    """Process ids of qemu-nbd processes whose parent is this test process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/comm") as handle:
                name = handle.read().strip()
        except OSError:
            continue
        if name == "qemu-nbd" and int(fields[1]) == os.getpid():
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead and not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_a_missing_backing_file_is_named_with_the_file_naming_it(tmp_path: Path) -> None:
    base = create(tmp_path / "base.qcow2", "qcow2", AWKWARD_SIZE)
    top = create(tmp_path / "top.qcow2", "qcow2", None, backing=base)
    base.unlink()
    assert await refused(top) == (f"{top}: backing file {base} (named by {top}) is missing")


async def test_a_loop_in_the_chain(tmp_path: Path) -> None:
    first = create(tmp_path / "a.qcow2", "qcow2", AWKWARD_SIZE)
    second = create(tmp_path / "b.qcow2", "qcow2", None, backing=first)
    run("qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", first)
    assert await refused(first) == (
        f"{first}: its backing chain loops: {second} names {first}, which is already in the chain"
    )


def encrypted_image(image: Path, scheme: str) -> Path:
    """A qcow2 image encrypted with ``scheme`` (aes or luks)."""
    if scheme == "luks":  # its key derivation times itself: made as it tolerates
        return encrypted_qcow2(image, "1M")
    run(
        *("qemu-img", "create", "-q", "-f", "qcow2", "--object", "secret,id=s0,data=pass"),
        *("-o", "encrypt.format=aes,encrypt.key-secret=s0", image, "1M"),
    )
    return image


@pytest.mark.parametrize("scheme", ["aes", "luks"])
async def test_an_encrypted_image(tmp_path: Path, scheme: str) -> None:
    image = encrypted_image(tmp_path / "secret.qcow2", scheme)
    message = await refused(image)
    assert message.startswith(f"{image}: is an encrypted qcow2 image;")
    assert "does not read encrypted images" in message


@pytest.mark.parametrize(
    ("fmt", "words"),
    [
        ("qcow2", "is damaged: qemu-img check finds"),
        ("vmdk", "is damaged: qemu-img check"),
        ("vdi", "is truncated: its map holds data up to byte"),
        ("vhdx", "qemu-img cannot open it"),
    ],
)
async def test_a_truncated_image(tmp_path: Path, fmt: str, words: str) -> None:
    raw = tmp_path / "full.raw"
    raw.write_bytes(b"\x5a" * (4 << 20))
    image = convert(raw, tmp_path / f"full.{fmt}", fmt)
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(image.read_bytes()[: 3 << 20])
    message = await refused(cut)
    assert message.startswith(f"{cut}: ")
    assert words in message


async def test_a_missing_extent_and_an_unknown_subformat(tmp_path: Path) -> None:
    flat = convert(pattern_raw(tmp_path / "p.raw"), tmp_path / "d.vmdk", "vmdk",
                   "subformat=monolithicFlat")  # fmt: skip
    (tmp_path / "d-flat.vmdk").unlink()
    assert await refused(flat) == (
        f"{flat}: Could not open '{tmp_path}/d-flat.vmdk': No such file or directory"
    )
    fancy = tmp_path / "fancy.vmdk"
    fancy.write_text(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
        'createType="fancy"\n\nRW 2048 FLAT "x.raw" 0\n'
    )
    (tmp_path / "x.raw").write_bytes(bytes(1 << 20))
    assert await refused(fancy) == (
        f"{fancy}: qemu-img cannot open it: Unsupported image type 'fancy'"
    )


async def test_formats_qemu_reads_but_azrestore_does_not(tmp_path: Path) -> None:
    image = create(tmp_path / "d.qed", "qed", AWKWARD_SIZE)
    assert await refused(image) == (
        f"{image}: is a QED image, which azrestore does not read (convert it first,"
        " e.g. qemu-img convert -O raw)"
    )


async def test_a_forced_format_that_is_wrong(tmp_path: Path) -> None:
    raw = pattern_raw(tmp_path / "p.raw")
    with pytest.raises(InputError) as caught:
        await open_source(raw, image_format="qcow2")
    assert str(caught.value) == f"{raw}: qemu-img cannot open it: Image is not in qcow2 format"


async def test_close_stops_qemu_nbd(tmp_path: Path) -> None:
    image = convert(pattern_raw(tmp_path / "p.raw"), tmp_path / "d.qcow2", "qcow2")
    before = qemu_nbd_children()
    source = await open_source(image)
    assert isinstance(source, ContainerImage)
    pid = source.server_pid
    assert pid is not None and qemu_nbd_children() == [*before, pid]
    source.data_extents()
    source.close()
    assert qemu_nbd_children() == before
    assert not alive(pid)
    source.close()  # twice is fine


async def test_a_failed_open_leaves_no_qemu_nbd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = convert(pattern_raw(tmp_path / "p.raw"), tmp_path / "d.qcow2", "qcow2")
    before = qemu_nbd_children()
    started: list[int] = []

    def refuse(address: object, *, name: str) -> None:
        started.extend(set(qemu_nbd_children()) - set(before))
        raise InputError(f"{name}: refused by the test")

    monkeypatch.setattr(qemu_image, "connect_pool", refuse)
    assert await refused(image) == f"{image}: refused by the test"
    assert len(started) == 1  # qemu-nbd ran, and was stopped
    assert qemu_nbd_children() == before


async def test_qemu_nbd_dying_is_a_source_error(tmp_path: Path) -> None:
    image = convert(pattern_raw(tmp_path / "p.raw"), tmp_path / "d.qcow2", "qcow2")
    qemu_io(image, "qcow2", "write -P 1 0 1M")
    with await open_source(image) as source:
        assert isinstance(source, ContainerImage)
        assert source.server_pid is not None
        os.kill(source.server_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(source.server_pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(SourceError) as caught:
            for offset in range(0, source.size, 1 << 20):
                source.read_at(offset, 1 << 20)
        message = str(caught.value)
        assert message.startswith(f"{image}: cannot read ")
        assert "qemu-nbd stopped" in message


def _kill_and_see_qemu_nbd_go(script: str, image: Path) -> None:
    """Run ``script`` (it prints its qemu-nbd's pid, then sleeps), kill -9 it, and wait
    up to 10 s for that qemu-nbd to be gone."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(image)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        said = child.stdout.readline().strip()
        assert said.isdigit(), f"no qemu-nbd serving when the process was killed: {said}"
        pid = int(said)
        assert alive(pid)
        child.kill()
        child.wait()
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(pid), "qemu-nbd outlived the process that started it"
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_a_killed_azrestore_leaves_no_qemu_nbd(tmp_path: Path) -> None:
    """kill -9 of the process that opened the image: the kernel closes its connections,
    and qemu-nbd, which serves no one then, exits."""
    image = convert(pattern_raw(tmp_path / "p.raw"), tmp_path / "d.qcow2", "qcow2")
    script = (
        "import sys, time\n"
        "from azrestore.sources.open import open_source_blocking\n"
        "source = open_source_blocking(sys.argv[1])\n"
        "source.read_at(0, 4096)\n"
        "print(source.server_pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    _kill_and_see_qemu_nbd_go(script, image)


_START_IN_A_THREAD_THAT_ENDS = (
    "import sys, threading, time\n"
    "from azrestore.sources.qemu.server import QemuNbd\n"
    "server = QemuNbd(sys.argv[1], 'qcow2', shared=4, shown=sys.argv[1])\n"
    "starter = threading.Thread(target=server.start)\n"
    "starter.start()\n"
    "starter.join()\n"
    "time.sleep(0.5)  # the thread that started it has ended: qemu-nbd must still serve\n"
    "print(server.pid if server.alive() else 'gone', flush=True)\n"
    "time.sleep(60)\n"
)


def test_azrestore_killed_before_any_handshake_leaves_no_qemu_nbd(tmp_path: Path) -> None:
    """qemu-nbd ends by itself only when a *negotiated* client leaves; killed before
    that (or while a new connection is still in its handshake), azrestore takes it
    along all the same, and the worker thread that started it ending does not."""
    image = convert(pattern_raw(tmp_path / "p.raw"), tmp_path / "d.qcow2", "qcow2")
    _kill_and_see_qemu_nbd_go(_START_IN_A_THREAD_THAT_ENDS, image)
