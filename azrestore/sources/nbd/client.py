"""A blocking NBD client on one connection (as oVirt imageio's is): the fixed newstyle
handshake with structured replies and the ``base:allocation`` meta context, then reads
straight into the caller's buffer and block status queries. One request at a time: a
worker thread owns a connection while it uses it (:mod:`.pool` hands them out).

Errors: :class:`NbdError` (the server refused, or broke the protocol) and ``OSError``
(the connection failed); callers above turn both into azrestore's errors.
"""

from __future__ import annotations

import socket

from ...formats import nbd
from ...formats.nbd import NbdProtocolError
from ...formats.nbd_url import NbdAddress
from ..closing import ClosedOnExit

TYPE_CHECKING = False
if TYPE_CHECKING:
    pass

#: Seconds a connection may take to be made and to answer the handshake, and any reply.
CONNECT_TIMEOUT = 30.0
IO_TIMEOUT = 300.0


class NbdError(Exception):
    """The server refused something, or sent what the protocol does not allow."""


class NbdClient(ClosedOnExit):
    """One connection to one export, after its handshake: :attr:`size`, the block sizes,
    whether block status is available; :meth:`read_into`, :meth:`block_status`."""

    def __init__(self, sock: socket.socket, address: NbdAddress) -> None:
        self._sock = sock
        self.address = address
        self.size = 0
        self.flags = 0
        self.minimum = 1
        self.maximum = nbd.DEFAULT_MAX_BLOCK
        self.structured = False
        self.context_id: int | None = None
        self._handle = 0
        self._header = bytearray(nbd.STRUCTURED_REPLY_SIZE)
        self._replied, self._replies = -1, 0  # the option being answered, replies so far

    @classmethod
    def connect(
        cls,
        address: NbdAddress,
        *,
        timeout: float = CONNECT_TIMEOUT,
        io_timeout: float = IO_TIMEOUT,
    ) -> NbdClient:
        """Connect to ``address`` and negotiate; raises ``OSError`` or :class:`NbdError`."""
        if address.socket is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(address.socket)
            except BaseException:
                sock.close()
                raise
        else:
            assert address.host is not None
            sock = socket.create_connection((address.host, address.port), timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = cls(sock, address)
        try:
            client._handshake()
            sock.settimeout(io_timeout)
        except BaseException:
            sock.close()
            raise
        return client

    # The handshake.

    def _handshake(self) -> None:
        try:
            server_flags = nbd.parse_greeting(self._recv(18))
            self._sock.sendall(nbd.client_flags(server_flags))
            self.structured = self._structured_replies()
            if self.structured:
                self.context_id = self._meta_context()
            self._go(server_flags)
        except NbdProtocolError as exc:
            raise NbdError(str(exc)) from None
        if self.size < 0 or self.size > 1 << 63:
            raise NbdError(f"export size {self.size} is not a size")

    def _option(self, option: int, data: bytes = b"") -> None:
        self._sock.sendall(nbd.encode_option(option, data))

    def _option_reply(self, option: int) -> tuple[nbd.OptionReply, bytes]:
        self._replies = self._replies + 1 if self._replied == option else 1
        self._replied = option
        if self._replies > nbd.MAX_OPTION_REPLIES:
            raise NbdError(f"the server sent over {nbd.MAX_OPTION_REPLIES} replies to one option")
        header = nbd.parse_option_reply(self._recv(20), option)
        return header, self._recv(header.length)

    def _structured_replies(self) -> bool:
        self._option(nbd.OPT_STRUCTURED_REPLY)
        reply, _ = self._option_reply(nbd.OPT_STRUCTURED_REPLY)
        return reply.type == nbd.REP_ACK

    def _meta_context(self) -> int | None:
        export = self.address.export
        self._sock.sendall(nbd.encode_set_meta_context(export, (nbd.BASE_ALLOCATION,)))
        context: int | None = None
        while True:
            reply, data = self._option_reply(nbd.OPT_SET_META_CONTEXT)
            if reply.type == nbd.REP_META_CONTEXT:
                context_id, name = nbd.parse_meta_context(data)
                if name == nbd.BASE_ALLOCATION:
                    context = context_id
            elif reply.type == nbd.REP_ACK:
                return context
            elif reply.type == nbd.REP_ERR_UNKNOWN:
                raise NbdError(self._no_export())
            elif reply.is_error:
                return None  # no block status: every byte is data
            else:
                raise NbdError(f"unexpected reply {reply.type} to NBD_OPT_SET_META_CONTEXT")

    def _no_export(self) -> str:
        name = self.address.export
        return (
            f"the server has no export named {name!r}"
            if name
            else "the server has no default export"
        )

    def _go(self, server_flags: int) -> None:
        self._sock.sendall(nbd.encode_go(self.address.export))
        have_export = False
        while True:
            reply, data = self._option_reply(nbd.OPT_GO)
            if reply.type == nbd.REP_INFO:
                info = nbd.parse_info(data)
                if isinstance(info, nbd.ExportInfo):
                    self.size, self.flags, have_export = info.size, info.flags, True
                elif isinstance(info, nbd.BlockSizes):
                    self.minimum = info.minimum
                    self.maximum = min(info.maximum, nbd.DEFAULT_MAX_BLOCK)
            elif reply.type == nbd.REP_ACK:
                if not have_export:
                    raise NbdError("the server sent no export size (NBD_INFO_EXPORT)")
                break
            elif reply.type == nbd.REP_ERR_UNSUP:
                self._export_name(server_flags)  # an older server: no NBD_OPT_GO
                break
            elif reply.type == nbd.REP_ERR_UNKNOWN:
                raise NbdError(self._no_export())
            elif reply.is_error:
                detail = nbd.printable(data.decode("utf-8", "replace"))
                raise NbdError(
                    f"the server refused the export: {reply.error_text()}"
                    + (f" ({detail})" if detail else "")
                )
            else:
                raise NbdError(f"unexpected reply {reply.type} to NBD_OPT_GO")
        # Reads may be at most this long and a multiple of the minimum block size.
        self.maximum = max(self.minimum, self.maximum // self.minimum * self.minimum)

    def _export_name(self, server_flags: int) -> None:
        self._option(nbd.OPT_EXPORT_NAME, self.address.export.encode())
        try:
            info = nbd.parse_export_name_reply(self._recv(10))
        except ConnectionError:
            raise NbdError(self._no_export()) from None  # the server hangs up on an unknown one
        if not server_flags & nbd.FLAG_NO_ZEROES:
            self._recv(124)
        self.size, self.flags = info.size, info.flags
        self.context_id = None  # meta contexts need NBD_OPT_GO

    # Transmission.

    def _request(self, command: int, offset: int, length: int, flags: int = 0) -> int:
        self._handle += 1
        self._sock.sendall(nbd.encode_request(command, self._handle, offset, length, flags))
        return self._handle

    def _reply_header(self, handle: int, max_payload: int) -> nbd.ReplyHeader:
        view = memoryview(self._header)
        self._recv_into(view[:4])
        size = nbd.reply_header_size(bytes(view[:4]))
        self._recv_into(view[4:size])
        header = nbd.parse_reply_header(bytes(view[:size]), max_payload)
        if header.handle != handle:
            raise NbdProtocolError(f"reply to request {header.handle}, not {handle}")
        return header

    def _error(self, header: nbd.ReplyHeader, what: str) -> NbdError:
        error, message = nbd.parse_error_chunk(self._recv(header.length), header.type)
        return NbdError(f"{what}: {nbd.errno_name(error)}" + (f": {message}" if message else ""))

    def read_into(self, view: memoryview, offset: int) -> None:
        """Fill ``view`` with the export's bytes at ``offset`` (all within the export),
        in requests of at most the server's maximum size."""
        try:
            done = 0
            while done < len(view):
                length = min(self.maximum, len(view) - done)
                self._read(view[done : done + length], offset + done)
                done += length
        except NbdProtocolError as exc:
            raise NbdError(str(exc)) from None

    def _read(self, view: memoryview, offset: int) -> None:
        length = len(view)
        handle = self._request(nbd.CMD_READ, offset, length)
        if not self.structured:
            header = self._reply_header(handle, 0)
            if header.error:
                raise NbdError(
                    f"read of {length} bytes at {offset}: {nbd.errno_name(header.error)}"
                )
            self._recv_into(view)
            return
        failure: NbdError | None = None
        covered: list[tuple[int, int]] = []
        while True:
            header = self._reply_header(handle, length + 8 + 0xFFFF)
            if header.type == nbd.CHUNK_OFFSET_DATA:
                if header.length < 8:
                    raise NbdProtocolError("OFFSET_DATA chunk too short")
                start = nbd.parse_chunk_offset(self._recv(8)) - offset
                end = start + header.length - 8
                if start < 0 or end > length:
                    raise NbdProtocolError("OFFSET_DATA chunk outside the request")
                self._recv_into(view[start:end])
                covered.append((start, end))
            elif header.type == nbd.CHUNK_OFFSET_HOLE:
                hole, size = nbd.parse_offset_hole(self._recv(header.length))
                start = hole - offset
                if start < 0 or start + size > length:
                    raise NbdProtocolError("OFFSET_HOLE chunk outside the request")
                view[start : start + size] = bytes(size)
                covered.append((start, start + size))
            elif header.type & nbd.CHUNK_ERROR_BIT:
                failure = self._error(header, f"read of {length} bytes at {offset}")
            elif header.type != nbd.CHUNK_NONE:
                raise NbdProtocolError(f"unexpected chunk type {header.type} in a read reply")
            if header.done:
                break
        if failure is not None:
            raise failure
        _check_covered(covered, length)

    def block_status(self, offset: int, length: int) -> list[tuple[int, int]]:
        """``(length, flags)`` extents from ``offset`` (at least one; together they may end
        before ``offset + length``, never past it: the caller asks again from there)."""
        if self.context_id is None:
            return [(length, 0)]
        try:
            handle = self._request(nbd.CMD_BLOCK_STATUS, offset, length)
            extents: list[tuple[int, int]] | None = None
            failure: NbdError | None = None
            while True:
                header = self._reply_header(handle, 1 << 20)
                if header.type == nbd.CHUNK_BLOCK_STATUS:
                    context_id, found = nbd.parse_block_status(self._recv(header.length))
                    if context_id == self.context_id:
                        extents = found
                elif header.type & nbd.CHUNK_ERROR_BIT:
                    failure = self._error(header, f"block status at {offset}")
                elif not header.structured and header.error:
                    failure = NbdError(f"block status at {offset}: {nbd.errno_name(header.error)}")
                elif header.type != nbd.CHUNK_NONE:
                    raise NbdProtocolError(f"unexpected chunk type {header.type} in block status")
                if header.done:
                    break
        except NbdProtocolError as exc:
            raise NbdError(str(exc)) from None
        if failure is not None:
            raise failure
        if not extents:
            raise NbdError(f"block status at {offset}: no base:allocation extents in the reply")
        clipped: list[tuple[int, int]] = []
        left = length
        for size, flags in extents:
            clipped.append((min(size, left), flags))
            left -= clipped[-1][0]
            if left == 0:
                break
        return clipped

    def close(self) -> None:
        """Say goodbye (NBD_CMD_DISC) and close the connection; never raises."""
        if self._sock.fileno() < 0:
            return
        try:
            self._sock.settimeout(1.0)
            self._request(nbd.CMD_DISC, 0, 0)
        except OSError:
            pass
        finally:
            self._sock.close()

    # Socket I/O.

    def _recv(self, size: int) -> bytes:
        buffer = bytearray(size)
        self._recv_into(memoryview(buffer))
        return bytes(buffer)

    def _recv_into(self, view: memoryview) -> None:
        done = 0
        while done < len(view):
            got = self._sock.recv_into(view[done:])
            if got == 0:
                raise ConnectionResetError("the NBD server closed the connection")
            done += got


def _check_covered(covered: list[tuple[int, int]], length: int) -> None:
    """Refuse a read reply whose chunks leave a gap or overlap: the buffer would hold
    bytes the server never sent."""
    position = 0
    for start, end in sorted(covered):
        if start != position:
            problem = "overlapping chunks" if start < position else f"nothing at {position}"
            raise NbdProtocolError(f"read reply of {length} bytes has {problem}")
        position = end
    if position != length:
        raise NbdProtocolError(f"read reply covered {position} bytes of {length}")
