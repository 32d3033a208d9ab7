"""The NBD client's reply handling, against a scripted server on a socket pair: reads land
in the caller's buffer from data and hole chunks in any order, a read is split at the
server's maximum, errors are NbdError, and any reply (fuzzed) is either read correctly or
refused, never written outside the buffer."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.formats import nbd
from azrestore.formats.nbd_url import NbdAddress
from azrestore.sources.nbd.client import NbdClient, NbdError

ADDRESS = NbdAddress("nbd+unix:///?socket=x", "", socket="x")


@pytest.fixture
def pair() -> Iterator[tuple[NbdClient, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    client = NbdClient(ours, ADDRESS)
    client.size, client.structured, client.context_id = 1 << 20, True, 1
    try:
        yield client, theirs
    finally:
        client.close()
        theirs.close()


def chunk(kind: int, handle: int, payload: bytes, *, done: bool = False) -> bytes:
    flags = nbd.REPLY_FLAG_DONE if done else 0
    header = struct.pack(">IHHQI", nbd.STRUCTURED_REPLY_MAGIC, flags, kind, handle, len(payload))
    return header + payload


def data(handle: int, offset: int, payload: bytes, *, done: bool = False) -> bytes:
    return chunk(nbd.CHUNK_OFFSET_DATA, handle, struct.pack(">Q", offset) + payload, done=done)


def hole(handle: int, offset: int, length: int, *, done: bool = False) -> bytes:
    return chunk(nbd.CHUNK_OFFSET_HOLE, handle, struct.pack(">QI", offset, length), done=done)


def test_chunks_in_any_order_fill_the_buffer(pair: tuple[NbdClient, socket.socket]) -> None:
    client, server = pair
    server.sendall(
        data(1, 4096 + 1024, b"b" * 1024)
        + hole(1, 4096 + 512, 512)
        + data(1, 4096, b"a" * 512)
        + chunk(nbd.CHUNK_NONE, 1, b"", done=True)
    )
    buffer = bytearray(b"\xff" * 2048)
    client.read_into(memoryview(buffer), 4096)
    assert buffer == b"a" * 512 + bytes(512) + b"b" * 1024
    request = server.recv(nbd.REQUEST_SIZE)
    assert struct.unpack(">IHHQQI", request) == (nbd.REQUEST_MAGIC, 0, nbd.CMD_READ, 1, 4096, 2048)


def test_a_read_is_split_at_the_servers_maximum(pair: tuple[NbdClient, socket.socket]) -> None:
    client, server = pair
    client.maximum = 1024
    server.sendall(
        data(1, 0, b"x" * 1024, done=True)
        + data(2, 1024, b"y" * 1024, done=True)
        + data(3, 2048, b"z" * 512, done=True)
    )
    buffer = bytearray(2560)
    client.read_into(memoryview(buffer), 0)
    assert buffer == b"x" * 1024 + b"y" * 1024 + b"z" * 512
    lengths = [struct.unpack(">IHHQQI", server.recv(28))[5] for _ in range(3)]
    assert lengths == [1024, 1024, 512]


def test_an_error_chunk_is_an_nbd_error(pair: tuple[NbdClient, socket.socket]) -> None:
    client, server = pair
    error = struct.pack(">IH", 5, 9) + b"bad block"
    server.sendall(chunk(nbd.CHUNK_ERROR, 1, error, done=True))
    with pytest.raises(NbdError, match=r"read of 512 bytes at 0: EIO: bad block"):
        client.read_into(memoryview(bytearray(512)), 0)


def test_a_short_reply_is_refused(pair: tuple[NbdClient, socket.socket]) -> None:
    client, server = pair
    server.sendall(data(1, 0, b"a" * 256, done=True))
    with pytest.raises(NbdError, match="covered 256 bytes of 512"):
        client.read_into(memoryview(bytearray(512)), 0)


def test_block_status_is_clipped_to_the_request(pair: tuple[NbdClient, socket.socket]) -> None:
    client, server = pair
    extents = struct.pack(">IIIII", 1, 4096, 0, 1 << 20, nbd.STATE_HOLE | nbd.STATE_ZERO)
    server.sendall(chunk(nbd.CHUNK_BLOCK_STATUS, 1, extents, done=True))
    assert client.block_status(0, 65536) == [(4096, 0), (61440, 3)]


def test_overlapping_chunks_are_refused(pair: tuple[NbdClient, socket.socket]) -> None:
    client, server = pair
    server.sendall(data(1, 0, b"a" * 512) + data(1, 0, b"b" * 512, done=True))
    with pytest.raises(NbdError, match="overlapping chunks"):
        client.read_into(memoryview(bytearray(1024)), 0)


def test_a_reply_to_another_request_is_refused(pair: tuple[NbdClient, socket.socket]) -> None:
    client, server = pair
    server.sendall(data(7, 0, b"a" * 512, done=True))
    with pytest.raises(NbdError, match="reply to request 7, not 1"):
        client.read_into(memoryview(bytearray(512)), 0)


_CHUNK = st.one_of(
    st.builds(
        lambda o, n, d: data(1, o, b"q" * n, done=d),
        st.integers(0, 2048), st.integers(0, 1024), st.booleans(),
    ),
    st.builds(
        lambda o, n, d: hole(1, o, n, done=d),
        st.integers(0, 2048), st.integers(0, 1024), st.booleans(),
    ),
    st.builds(lambda d: chunk(nbd.CHUNK_NONE, 1, b"", done=d), st.booleans()),
    st.builds(lambda raw: raw, st.binary(max_size=40)),
)  # fmt: skip


@settings(max_examples=150)
@given(st.lists(_CHUNK, max_size=6))
def test_any_reply_is_read_or_refused(chunks: list[bytes]) -> None:
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    try:
        client = NbdClient(ours, ADDRESS)
        client.size, client.structured = 1 << 20, True
        theirs.sendall(b"".join(chunks))
        theirs.shutdown(socket.SHUT_WR)  # then the client meets the end of the stream
        guard = bytearray(b"\xee" * 3072)
        view = memoryview(guard)[1024:2048]
        try:
            client.read_into(view, 1024)
        except (NbdError, OSError):
            pass
        else:  # read: only from chunks, which hold b"q" or zeros
            assert set(view.tobytes()) <= {0, ord("q")}
        assert guard[:1024] == b"\xee" * 1024 and guard[2048:] == b"\xee" * 1024
    finally:
        ours.close()
        theirs.close()
