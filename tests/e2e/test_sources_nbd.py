"""NBD exports as sources: a qemu-nbd export on 127.0.0.1 and nbdkit's memory and file
plugins on Unix sockets read as qemu reads them, with block status deciding what is data;
a server that is not there, or has no such export, is one clear InputError."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from azrestore.errors import InputError
from azrestore.sources.base import ChainLink
from azrestore.sources.nbd import NbdSource
from azrestore.sources.nbd import pool as nbd_pool
from azrestore.sources.open import open_source
from tests.e2e.test_sources_formats import read_all
from tests.support.nbdserver import free_port, serving
from tests.support.qemu import (
    AWKWARD_SIZE,
    PATTERN,
    convert,
    nonzero_map,
    pattern_raw,
    qemu_io,
    raw_view,
)
from tests.support.tools import needs

pytestmark = pytest.mark.anyio


def _qemu_nbd_tcp(image: Path, port: int, *extra: str) -> list[str]:
    return [
        "qemu-nbd", "--read-only", "--persistent", "--format=qcow2", "--bind=127.0.0.1",
        f"--port={port}", "--export-name=disk", *extra, str(image),
    ]  # fmt: skip


@needs("qemu-img", "qemu-nbd")
async def test_a_qemu_nbd_export_over_tcp(tmp_path: Path) -> None:
    image = convert(pattern_raw(tmp_path / "p.raw"), tmp_path / "disk.qcow2", "qcow2")
    port = free_port()
    with serving(_qemu_nbd_tcp(image, port, "--shared=8"), port=port):
        url = f"nbd://127.0.0.1:{port}/disk"
        with await open_source(url) as source:
            assert (source.path, source.format, source.size) == (url, "nbd", AWKWARD_SIZE)
            assert source.chain == (ChainLink(url, "nbd"),)
            assert read_all(source) == raw_view(image, "qcow2")
            assert source.data_extents() == nonzero_map(image, "qcow2")


@needs("qemu-img", "qemu-nbd")
async def test_a_server_that_takes_one_connection_is_shared_by_the_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """qemu-nbd without --shared serves one client: the extra connections time out and
    the readers take turns on the one that works."""
    monkeypatch.setattr(nbd_pool, "EXTRA_TIMEOUT", 0.5)
    image = convert(pattern_raw(tmp_path / "p.raw"), tmp_path / "disk.qcow2", "qcow2")
    expected = raw_view(image, "qcow2")
    port = free_port()
    with (
        serving(_qemu_nbd_tcp(image, port), port=port),
        await open_source(f"nbd://127.0.0.1:{port}/disk") as source,
    ):
        chunk = 1 << 20
        results: dict[int, bytes] = {}

        def read(offset: int) -> None:
            results[offset] = source.read_at(offset, chunk)

        threads = [
            threading.Thread(target=read, args=(offset,)) for offset in range(0, source.size, chunk)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert b"".join(results[o] for o in sorted(results)) == expected
        assert isinstance(source, NbdSource)
        assert source._pool.limit == 1


@needs("qemu-img", "qemu-nbd")
async def test_an_export_the_server_does_not_have(tmp_path: Path) -> None:
    image = convert(pattern_raw(tmp_path / "p.raw"), tmp_path / "disk.qcow2", "qcow2")
    port = free_port()
    with serving(_qemu_nbd_tcp(image, port, "--shared=2"), port=port):
        url = f"nbd://127.0.0.1:{port}/other"
        with pytest.raises(InputError) as caught:
            await open_source(url)
        assert str(caught.value) == f"{url}: the server has no export named 'other'"


async def test_a_server_that_is_not_there(tmp_path: Path) -> None:
    url = f"nbd://127.0.0.1:{free_port()}/disk"
    with pytest.raises(InputError, match=r"cannot connect to the NBD server: .*refused"):
        await open_source(url)
    url = f"nbd+unix:///disk?socket={tmp_path}/none.sock"
    with pytest.raises(InputError) as caught:
        await open_source(url)
    assert str(caught.value) == (
        f"{url}: cannot connect to the NBD server: No such file or directory"
    )


async def test_a_bad_url_and_a_forced_format(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="TLS"):
        await open_source("nbds://127.0.0.1/disk")
    with pytest.raises(InputError, match="--format qcow2 does not apply"):
        await open_source("nbd://127.0.0.1/disk", image_format="qcow2")
    with pytest.raises(InputError, match="needs an nbd:// or nbd"):
        await open_source(tmp_path / "x.raw", image_format="nbd")


@needs("nbdkit", "qemu-io")
async def test_nbdkit_memory_over_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "nbdkit.sock"
    command = ["nbdkit", "--foreground", "--unix", str(sock), "memory", f"size={AWKWARD_SIZE}"]
    with serving(command, unix=sock):
        url = f"nbd+unix:///?socket={sock}"
        writes = [f"write -P {value} {offset} {length}" for offset, length, value in PATTERN]
        qemu_io(url, "raw", *writes)
        with await open_source(url) as source:
            data = read_all(source)
            expected = pattern_raw(tmp_path / "p.raw").read_bytes()
            assert data == expected
            covered = bytearray(expected)
            for offset, length in source.data_extents():
                covered[offset : offset + length] = bytes(length)
            assert not any(covered)
            assert source.allocated_bytes() < AWKWARD_SIZE // 4


@needs("nbdkit")
async def test_nbdkit_file_over_a_unix_socket(tmp_path: Path) -> None:
    raw = pattern_raw(tmp_path / "p.raw")
    sock = tmp_path / "nbdkit.sock"
    command = ["nbdkit", "--foreground", "--readonly", "--unix", str(sock), "file", str(raw)]
    with (
        serving(command, unix=sock),
        await open_source(f"nbd+unix:///?socket={sock}") as source,
    ):
        assert read_all(source) == raw.read_bytes()
        covered = bytearray(raw.read_bytes())
        for offset, length in source.data_extents():
            covered[offset : offset + length] = bytes(length)
        assert not any(covered)
        assert source.allocated_bytes() < AWKWARD_SIZE // 4
