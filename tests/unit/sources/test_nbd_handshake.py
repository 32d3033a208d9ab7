"""The NBD handshake against a scripted server on a Unix socket: what it negotiates (block
sizes, block status), the old NBD_OPT_EXPORT_NAME fallback, and each refusal in words."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from azrestore.formats import nbd
from azrestore.formats.nbd_url import NbdAddress
from azrestore.sources.nbd.client import NbdClient, NbdError

Script = Callable[[socket.socket], None]


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        got = sock.recv(size - len(data))
        if not got:
            raise ConnectionError("client gone")
        data += got
    return data


def read_option(sock: socket.socket) -> tuple[int, bytes]:
    magic, option, length = struct.unpack(">QII", recv_exact(sock, 16))
    assert magic == nbd.IHAVEOPT
    return option, recv_exact(sock, length)


def reply(sock: socket.socket, option: int, kind: int, data: bytes = b"") -> None:
    sock.sendall(struct.pack(">QIII", nbd.REPLY_MAGIC, option, kind, len(data)) + data)


def greet(sock: socket.socket, flags: int = 3) -> None:
    sock.sendall(struct.pack(">QQH", nbd.NBDMAGIC, nbd.IHAVEOPT, flags))
    recv_exact(sock, 4)


def modern(go: Callable[[socket.socket], None], *, meta: bool = True) -> Script:
    """A server that accepts structured replies and base:allocation, then ``go``."""

    def script(sock: socket.socket) -> None:
        greet(sock)
        option, _ = read_option(sock)
        assert option == nbd.OPT_STRUCTURED_REPLY
        reply(sock, option, nbd.REP_ACK)
        option, _ = read_option(sock)
        assert option == nbd.OPT_SET_META_CONTEXT
        if meta:
            reply(sock, option, nbd.REP_META_CONTEXT, struct.pack(">I", 7) + b"base:allocation")
            reply(sock, option, nbd.REP_ACK)
        else:
            reply(sock, option, nbd.REP_FLAG_ERROR | 1)
        option, _ = read_option(sock)
        assert option == nbd.OPT_GO
        go(sock)

    return script


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Script], NbdAddress]]:
    path = str(tmp_path / "s.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    threads: list[threading.Thread] = []

    def start(script: Script) -> NbdAddress:
        def run() -> None:
            conn, _ = listener.accept()
            with conn:
                try:
                    script(conn)
                    conn.recv(1024)  # until the client hangs up
                except (ConnectionError, OSError):
                    pass

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return NbdAddress(f"nbd+unix:///disk?socket={path}", "disk", socket=path)

    try:
        yield start
    finally:
        listener.close()
        for thread in threads:
            thread.join(5)


def test_a_modern_server(serve: Callable[[Script], NbdAddress]) -> None:
    def go(sock: socket.socket) -> None:
        reply(sock, nbd.OPT_GO, nbd.REP_INFO, struct.pack(">HQH", 0, 10 << 20, 3))
        reply(sock, nbd.OPT_GO, nbd.REP_INFO, struct.pack(">HIII", 3, 512, 4096, 1 << 20))
        reply(sock, nbd.OPT_GO, nbd.REP_ACK)

    with NbdClient.connect(serve(modern(go))) as client:
        assert (client.size, client.structured, client.context_id) == (10 << 20, True, 7)
        assert (client.minimum, client.maximum) == (512, 1 << 20)


def test_no_block_status_reads_everything(serve: Callable[[Script], NbdAddress]) -> None:
    def go(sock: socket.socket) -> None:
        reply(sock, nbd.OPT_GO, nbd.REP_INFO, struct.pack(">HQH", 0, 1 << 20, 3))
        reply(sock, nbd.OPT_GO, nbd.REP_ACK)

    with NbdClient.connect(serve(modern(go, meta=False))) as client:
        assert client.context_id is None
        assert client.maximum == nbd.DEFAULT_MAX_BLOCK
        assert client.block_status(0, 1 << 20) == [(1 << 20, 0)]


def test_an_old_server_without_go(serve: Callable[[Script], NbdAddress]) -> None:
    def script(sock: socket.socket) -> None:
        greet(sock, flags=1)  # fixed newstyle, zeroes after the export name reply
        for expected in (nbd.OPT_STRUCTURED_REPLY, nbd.OPT_GO):  # no meta context then
            option, _ = read_option(sock)
            assert option == expected
            reply(sock, option, nbd.REP_ERR_UNSUP)
        option, name = read_option(sock)
        assert (option, name) == (nbd.OPT_EXPORT_NAME, b"disk")
        sock.sendall(struct.pack(">QH", 3 << 20, 3) + bytes(124))

    with NbdClient.connect(serve(script)) as client:
        assert (client.size, client.structured, client.context_id) == (3 << 20, False, None)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (nbd.REP_ERR_UNKNOWN, "the server has no export named 'disk'"),
        (nbd.REP_FLAG_ERROR | 5, "the server refused the export: the server requires TLS"),
        (
            nbd.REP_FLAG_ERROR | 2,
            "the server refused the export: forbidden by the server's policy (go away [31m now)",
        ),
    ],
)
def test_refusals_in_words(serve: Callable[[Script], NbdAddress], kind: int, message: str) -> None:
    def go(sock: socket.socket) -> None:
        detail = b"go\naway\x1b[31m now" if kind == nbd.REP_FLAG_ERROR | 2 else b""
        reply(sock, nbd.OPT_GO, kind, detail)

    with pytest.raises(NbdError) as caught:
        NbdClient.connect(serve(modern(go)))
    assert str(caught.value) == message


def test_a_server_that_never_stops_answering(serve: Callable[[Script], NbdAddress]) -> None:
    def go(sock: socket.socket) -> None:
        info = struct.pack(">HQH", 0, 1 << 20, 3)
        for _ in range(nbd.MAX_OPTION_REPLIES + 1):
            reply(sock, nbd.OPT_GO, nbd.REP_INFO, info)

    with pytest.raises(NbdError, match="replies to one option"):
        NbdClient.connect(serve(modern(go)))


def test_not_an_nbd_server(serve: Callable[[Script], NbdAddress]) -> None:
    def script(sock: socket.socket) -> None:
        sock.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    with pytest.raises(NbdError, match="not an NBD server"):
        NbdClient.connect(serve(script))
