"""The simplest sender of a disk's bytes, the CPU benchmark's peer: one keep-alive socket,
Create Blob, then for every 4 MiB of the image a pread and one Put Page (its headers and
the chunk in one sendmsg), then the fixed VHD footer; standard library only, no checksum.

    python -m benchmarks.cpu_peer IMAGE BLOB_URL_WITH_SAS

It sends every chunk, zeros included (it is given dense images), and prints one JSON line.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from urllib.parse import urlsplit

CHUNK = 4 << 20
API_VERSION = "2023-11-03"


class Connection:
    """One HTTP/1.1 keep-alive connection, requests sent with sendmsg, answers read whole."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = f"{host}:{port}"
        self.buffer = b""

    def request(self, method: str, target: str, headers: dict[str, str], body: bytes) -> int:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        parts = [memoryview(head), memoryview(body)]
        while parts:  # sendmsg may send part of it: go on from where it stopped
            sent = self.sock.sendmsg(parts)
            while parts and sent >= len(parts[0]):
                sent -= len(parts[0])
                parts.pop(0)
            if parts:
                parts[0] = parts[0][sent:]
        return self._answer()

    def _answer(self) -> int:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        while len(self.buffer) < length:
            self._fill()
        self.buffer = self.buffer[length:]
        return status

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data


def main(argv: list[str]) -> int:
    image, url = argv
    from azrestore.formats.vhd import fixed_vhd_footer

    parts = urlsplit(url)
    path, query = parts.path, parts.query
    size = os.path.getsize(image)
    footer = fixed_vhd_footer(size)
    assert parts.hostname is not None and parts.port is not None
    conn = Connection(parts.hostname, parts.port)
    base = {"x-ms-version": API_VERSION}
    status = conn.request(
        "PUT",
        f"{path}?{query}",
        {**base, "x-ms-blob-type": "PageBlob", "x-ms-blob-content-length": str(size + 512)},
        b"",
    )
    if status != 201:
        print(f"Create Blob: HTTP {status}", file=sys.stderr)
        return 1
    target = f"{path}?comp=page&{query}"
    fd = os.open(image, os.O_RDONLY)
    requests = 0
    try:
        offset = 0
        while offset <= size:
            data = os.pread(fd, CHUNK, offset) if offset < size else footer
            if not data:
                break
            end = offset + len(data) - 1
            headers = {**base, "x-ms-page-write": "update", "x-ms-range": f"bytes={offset}-{end}"}
            status = conn.request("PUT", target, headers, data)
            if status != 201:
                print(f"Put Page {offset}-{end}: HTTP {status}", file=sys.stderr)
                return 1
            requests += 1
            offset += len(data)
    finally:
        os.close(fd)
        conn.sock.close()
    print(json.dumps({"requests": requests, "bytes": size + 512}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
