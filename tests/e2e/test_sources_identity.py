"""The journal's identity of a container image covers every file of its chain (and a VMDK's
extents), so a changed backing file is refused on resume as a changed raw file is; an NBD
export is known by its URL, size and sampled blocks; old journals still read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from azrestore.sources.open import open_source
from azrestore.transfer.identity import SourceIdentity, source_identity
from tests.support.nbdserver import serving
from tests.support.qemu import AWKWARD_SIZE, convert, create, pattern_raw, qemu_io, run
from tests.support.tools import needs

pytestmark = [needs("qemu-img", "qemu-io", "qemu-nbd"), pytest.mark.anyio]


async def identity(location: Path | str) -> SourceIdentity:
    with await open_source(location) as source:
        return source_identity(source)


def chain(tmp: Path) -> tuple[Path, Path, Path]:
    base = convert(pattern_raw(tmp / "p.raw"), tmp / "base.qcow2", "qcow2")
    mid = create(tmp / "mid.qcow2", "qcow2", None, backing=base)
    qemu_io(mid, "qcow2", "write -P 0x11 1M 64k")
    top = create(tmp / "top.qcow2", "qcow2", None, backing=mid)
    qemu_io(top, "qcow2", "write -P 0x22 2M 64k")
    return top, mid, base


async def test_a_chain_is_known_by_every_file(tmp_path: Path) -> None:
    top, mid, base = chain(tmp_path)
    recorded = await identity(top)
    assert recorded.format == "qcow2"
    assert recorded.size == AWKWARD_SIZE
    assert [item.path for item in recorded.files] == [str(top), str(mid), str(base)]
    assert recorded.differences(await identity(top)) == []
    # Round trip through a journal's JSON.
    assert SourceIdentity.from_json(json.loads(json.dumps(recorded.to_json()))) == recorded


async def test_a_changed_backing_file_is_seen(tmp_path: Path) -> None:
    top, _, base = chain(tmp_path)
    recorded = await identity(top)
    info = base.stat()
    qemu_io(base, "qcow2", "write -P 0x99 5M 4k")
    os.utime(base, ns=(info.st_atime_ns, info.st_mtime_ns))  # the mtime put back
    changes = recorded.differences(await identity(top))
    assert f"file {base} was modified (ctime changed)" in changes


async def test_a_rebased_chain_is_another_source(tmp_path: Path) -> None:
    top, mid, base = chain(tmp_path)
    recorded = await identity(top)
    qemu_io(mid, "qcow2", "write -P 0 1M 64k")  # undo the mid layer's data, then skip it
    run("qemu-img", "rebase", "-q", "-u", "-f", "qcow2", "-b", base.name, "-F", "qcow2", top)
    (changes,) = [c for c in recorded.differences(await identity(top)) if "other files" in c]
    assert changes == (f"is made of other files now (its chain was: {top}, {mid}, {base})")


async def test_a_vmdk_extent_is_part_of_the_identity(tmp_path: Path) -> None:
    image = convert(pattern_raw(tmp_path / "p.raw"), tmp_path / "d.vmdk", "vmdk",
                    "subformat=monolithicFlat")  # fmt: skip
    extent = tmp_path / "d-flat.vmdk"
    recorded = await identity(image)
    assert [item.path for item in recorded.files] == [str(image), str(extent)]
    with extent.open("r+b") as handle:
        handle.seek(3 << 20)
        handle.write(b"x")
    assert f"file {extent} was modified (mtime changed)" in recorded.differences(
        await identity(image)
    )


@needs("nbdkit")
async def test_an_nbd_export_is_known_by_url_size_and_samples(tmp_path: Path) -> None:
    raw = pattern_raw(tmp_path / "p.raw")
    sock = tmp_path / "s.sock"
    url = f"nbd+unix:///?socket={sock}"
    command = ["nbdkit", "--foreground", "--unix", str(sock), "file", str(raw)]
    with serving(command, unix=sock):
        recorded = await identity(url)
        assert (recorded.path, recorded.format, recorded.size) == (url, "nbd", AWKWARD_SIZE)
        assert recorded.files == ()
        assert recorded.differences(await identity(url)) == []
        with raw.open("r+b") as handle:
            handle.write(b"\x01" * 512)
        assert recorded.differences(await identity(url)) == [
            "has other content (sampled blocks differ)"
        ]


def test_an_old_journals_identity_reads_as_raw() -> None:
    old = {
        "path": "/d.raw", "size": 1, "mtime_ns": 1, "inode": 1, "device": 1,
        "sample_digest": "x", "ctime_ns": 1, "block": None,
    }  # fmt: skip
    identity = SourceIdentity.from_json(old)
    assert (identity.format, identity.files) == ("raw", ())
