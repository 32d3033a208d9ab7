"""The NBD protocol's messages (doc/proto.md of NetworkBlockDevice/nbd), encoded and decoded
with no I/O: the fixed newstyle handshake, the options azrestore sends (``GO``,
``EXPORT_NAME``, ``STRUCTURED_REPLY``, ``SET_META_CONTEXT``), requests, simple and
structured replies and their chunks (``OFFSET_DATA``, ``OFFSET_HOLE``, ``BLOCK_STATUS``,
``ERROR``).

Every ``parse_*`` function takes exactly the bytes its message has on the wire and raises
:class:`NbdProtocolError` (never anything else) for what a server must not send.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Handshake.
NBDMAGIC = 0x4E42444D41474943  # "NBDMAGIC"
IHAVEOPT = 0x49484156454F5054  # "IHAVEOPT"
REPLY_MAGIC = 0x3E889045565A9
FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2

# Options.
OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_SET_META_CONTEXT = 10

# Option replies.
REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_META_CONTEXT = 4
REP_FLAG_ERROR = 1 << 31
REP_ERRORS = {
    REP_FLAG_ERROR | 1: "not supported by the server",
    REP_FLAG_ERROR | 2: "forbidden by the server's policy",
    REP_FLAG_ERROR | 3: "invalid request",
    REP_FLAG_ERROR | 4: "not supported on the server's platform",
    REP_FLAG_ERROR | 5: "the server requires TLS",
    REP_FLAG_ERROR | 6: "no such export",
    REP_FLAG_ERROR | 7: "the server is shutting down",
    REP_FLAG_ERROR | 8: "the server requires block size negotiation",
    REP_FLAG_ERROR | 9: "request too big",
    REP_FLAG_ERROR | 10: "the server requires extended headers",
}
REP_ERR_UNSUP = REP_FLAG_ERROR | 1
REP_ERR_UNKNOWN = REP_FLAG_ERROR | 6

# Information types (NBD_OPT_GO / NBD_REP_INFO).
INFO_EXPORT = 0
INFO_BLOCK_SIZE = 3

# Transmission flags.
TFLAG_HAS_FLAGS = 1 << 0
TFLAG_READ_ONLY = 1 << 1
TFLAG_CAN_MULTI_CONN = 1 << 8

# Requests.
REQUEST_MAGIC = 0x25609513
CMD_READ = 0
CMD_DISC = 2
CMD_BLOCK_STATUS = 7
CMD_FLAG_REQ_ONE = 1 << 3
REQUEST_SIZE = 28

# Replies.
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF
SIMPLE_REPLY_SIZE = 16
STRUCTURED_REPLY_SIZE = 20
REPLY_FLAG_DONE = 1
CHUNK_NONE = 0
CHUNK_OFFSET_DATA = 1
CHUNK_OFFSET_HOLE = 2
CHUNK_BLOCK_STATUS = 5
CHUNK_ERROR = (1 << 15) | 1
CHUNK_ERROR_OFFSET = (1 << 15) | 2
CHUNK_ERROR_BIT = 1 << 15

# Block status (meta context "base:allocation").
BASE_ALLOCATION = "base:allocation"
STATE_HOLE = 1
STATE_ZERO = 2

#: The largest request a server takes when it does not say (the spec's default).
DEFAULT_MAX_BLOCK = 32 * 1024 * 1024
#: Longest name or message azrestore accepts from a server (the spec's string limit).
MAX_STRING = 4096
#: Most replies azrestore takes to one option (a server sending more is looping).
MAX_OPTION_REPLIES = 64
#: Longest option reply azrestore reads (an INFO or META_CONTEXT reply is far smaller).
MAX_OPTION_REPLY = 64 * 1024

ERRNO_NAMES = {
    1: "EPERM",
    5: "EIO",
    12: "ENOMEM",
    22: "EINVAL",
    28: "ENOSPC",
    75: "EOVERFLOW",
    95: "ENOTSUP",
    108: "ESHUTDOWN",
}


class NbdProtocolError(ValueError):
    """What an NBD server sent breaks the protocol (or asks for what azrestore cannot do)."""


def printable(text: str, limit: int = 200) -> str:
    """A server's message made fit for one line of an error: control characters and runs
    of white space become one space, and it is cut at ``limit`` characters."""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def errno_name(error: int) -> str:
    """The spec's name of an NBD error value (``EIO``), or the number."""
    return ERRNO_NAMES.get(error, f"error {error}")


def parse_greeting(data: bytes) -> int:
    """The handshake flags of a server's first 18 bytes; only fixed newstyle is spoken."""
    _exact(data, 18, "greeting")
    magic, option_magic, flags = struct.unpack(">QQH", data)
    if magic != NBDMAGIC:
        raise NbdProtocolError("not an NBD server (no NBDMAGIC in its greeting)")
    if option_magic != IHAVEOPT:
        raise NbdProtocolError("the server speaks the old NBD handshake, not newstyle")
    if not flags & FLAG_FIXED_NEWSTYLE:
        raise NbdProtocolError("the server does not speak the fixed newstyle handshake")
    return int(flags)


def client_flags(server_flags: int) -> bytes:
    """The client's 4-byte answer to the greeting: fixed newstyle, no zeroes if offered."""
    return struct.pack(">I", FLAG_FIXED_NEWSTYLE | (server_flags & FLAG_NO_ZEROES))


def encode_option(option: int, data: bytes = b"") -> bytes:
    """An option request: IHAVEOPT, the option, the length of its data and the data."""
    return struct.pack(">QII", IHAVEOPT, option, len(data)) + data


def _string(value: str, what: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > MAX_STRING:
        raise NbdProtocolError(f"{what} is longer than {MAX_STRING} bytes")
    return struct.pack(">I", len(raw)) + raw


def encode_go(export: str, infos: tuple[int, ...] = (INFO_BLOCK_SIZE,)) -> bytes:
    """NBD_OPT_GO for ``export``, asking for the information types ``infos``."""
    data = _string(export, "export name") + struct.pack(f">H{len(infos)}H", len(infos), *infos)
    return encode_option(OPT_GO, data)


def encode_set_meta_context(export: str, queries: tuple[str, ...]) -> bytes:
    """NBD_OPT_SET_META_CONTEXT of ``export`` for the contexts ``queries``."""
    data = _string(export, "export name") + struct.pack(">I", len(queries))
    data += b"".join(_string(query, "meta context") for query in queries)
    return encode_option(OPT_SET_META_CONTEXT, data)


@dataclass(frozen=True, slots=True)
class OptionReply:
    """The header of an option reply: which option it answers, its type and data length."""

    option: int
    type: int
    length: int

    @property
    def is_error(self) -> bool:
        return bool(self.type & REP_FLAG_ERROR)

    def error_text(self) -> str:
        """The spec's meaning of an error reply type, in words."""
        return REP_ERRORS.get(self.type, f"refused (error {self.type & ~REP_FLAG_ERROR})")


def parse_option_reply(data: bytes, option: int) -> OptionReply:
    """The 20-byte header of a reply to ``option``."""
    _exact(data, 20, "option reply")
    magic, answered, kind, length = struct.unpack(">QIII", data)
    if magic != REPLY_MAGIC:
        raise NbdProtocolError("bad magic in an option reply")
    if answered != option:
        raise NbdProtocolError(f"reply to option {answered}, not to the option {option} sent")
    if length > MAX_OPTION_REPLY:
        raise NbdProtocolError(f"option reply of {length} bytes is too long")
    return OptionReply(answered, kind, length)


@dataclass(frozen=True, slots=True)
class ExportInfo:
    """What NBD_INFO_EXPORT tells: the export's size and transmission flags."""

    size: int
    flags: int


@dataclass(frozen=True, slots=True)
class BlockSizes:
    """NBD_INFO_BLOCK_SIZE: the smallest, preferred and largest request sizes."""

    minimum: int
    preferred: int
    maximum: int


def parse_info(data: bytes) -> ExportInfo | BlockSizes | None:
    """The data of an NBD_REP_INFO reply; None for information types azrestore ignores."""
    if len(data) < 2:
        raise NbdProtocolError("NBD_REP_INFO reply too short")
    (kind,) = struct.unpack_from(">H", data)
    if kind == INFO_EXPORT:
        _exact(data, 12, "NBD_INFO_EXPORT")
        size, flags = struct.unpack_from(">QH", data, 2)
        return ExportInfo(size, flags)
    if kind == INFO_BLOCK_SIZE:
        _exact(data, 14, "NBD_INFO_BLOCK_SIZE")
        minimum, preferred, maximum = struct.unpack_from(">III", data, 2)
        if not (
            _power_of_two(minimum)
            and minimum <= 64 * 1024
            and _power_of_two(preferred)
            and preferred >= max(minimum, 512)
            and maximum >= minimum
            and (maximum % minimum == 0 or maximum == 0xFFFFFFFF)
        ):
            raise NbdProtocolError(
                f"impossible block sizes (minimum {minimum}, preferred {preferred},"
                f" maximum {maximum})"
            )
        return BlockSizes(minimum, preferred, maximum)
    return None


def parse_export_name_reply(data: bytes) -> ExportInfo:
    """The reply to NBD_OPT_EXPORT_NAME (its 10 bytes; any zero padding already read)."""
    _exact(data, 10, "NBD_OPT_EXPORT_NAME reply")
    size, flags = struct.unpack(">QH", data)
    return ExportInfo(size, flags)


def parse_meta_context(data: bytes) -> tuple[int, str]:
    """The id and name of an NBD_REP_META_CONTEXT reply."""
    if len(data) < 4:
        raise NbdProtocolError("NBD_REP_META_CONTEXT reply too short")
    (context_id,) = struct.unpack_from(">I", data)
    try:
        name = data[4:].decode("utf-8")
    except UnicodeDecodeError:
        raise NbdProtocolError("meta context name is not UTF-8") from None
    return int(context_id), name


def encode_request(command: int, handle: int, offset: int, length: int, flags: int = 0) -> bytes:
    """A 28-byte transmission request."""
    return struct.pack(">IHHQQI", REQUEST_MAGIC, flags, command, handle, offset, length)


@dataclass(frozen=True, slots=True)
class ReplyHeader:
    """A reply's header. ``structured``: a chunk with ``type``, ``flags`` and ``length``
    bytes of payload; else a simple reply (``error`` set, ``length`` 0)."""

    structured: bool
    handle: int
    error: int = 0
    flags: int = 0
    type: int = 0
    length: int = 0

    @property
    def done(self) -> bool:
        return not self.structured or bool(self.flags & REPLY_FLAG_DONE)


def reply_header_size(magic: bytes) -> int:
    """How long the reply whose first 4 bytes are ``magic`` has its header."""
    _exact(magic, 4, "reply magic")
    (value,) = struct.unpack(">I", magic)
    if value == SIMPLE_REPLY_MAGIC:
        return SIMPLE_REPLY_SIZE
    if value == STRUCTURED_REPLY_MAGIC:
        return STRUCTURED_REPLY_SIZE
    raise NbdProtocolError(f"bad reply magic 0x{value:08x}")


def parse_reply_header(data: bytes, max_payload: int) -> ReplyHeader:
    """A whole simple (16 bytes) or structured (20 bytes) reply header; a structured
    chunk's payload may be at most ``max_payload`` bytes."""
    size = reply_header_size(data[:4])
    _exact(data, size, "reply header")
    if size == SIMPLE_REPLY_SIZE:
        _, error, handle = struct.unpack(">IIQ", data)
        return ReplyHeader(False, handle, error=error)
    _, flags, kind, handle, length = struct.unpack(">IHHQI", data)
    if length > max_payload:
        raise NbdProtocolError(f"reply chunk of {length} bytes is longer than allowed")
    if kind == CHUNK_NONE and (length or not flags & REPLY_FLAG_DONE):
        raise NbdProtocolError("NBD_REPLY_TYPE_NONE chunk with data or without the DONE flag")
    return ReplyHeader(True, handle, flags=flags, type=kind, length=length)


def parse_chunk_offset(data: bytes) -> int:
    """The offset that starts an OFFSET_DATA chunk's payload (its first 8 bytes)."""
    _exact(data, 8, "OFFSET_DATA offset")
    return int(struct.unpack(">Q", data)[0])


def parse_offset_hole(data: bytes) -> tuple[int, int]:
    """``(offset, length)`` of an OFFSET_HOLE chunk's 12-byte payload."""
    _exact(data, 12, "OFFSET_HOLE chunk")
    offset, length = struct.unpack(">QI", data)
    if length == 0:
        raise NbdProtocolError("OFFSET_HOLE chunk of length 0")
    return int(offset), int(length)


def parse_block_status(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """The context id and ``(length, flags)`` descriptors of a BLOCK_STATUS chunk."""
    if len(data) < 12 or (len(data) - 4) % 8:
        raise NbdProtocolError(f"BLOCK_STATUS chunk of {len(data)} bytes")
    (context_id,) = struct.unpack_from(">I", data)
    values = struct.unpack_from(f">{(len(data) - 4) // 4}I", data, 4)
    extents = list(zip(values[0::2], values[1::2], strict=True))
    if any(length == 0 for length, _ in extents):
        raise NbdProtocolError("BLOCK_STATUS extent of length 0")
    return int(context_id), extents


def parse_error_chunk(data: bytes, kind: int) -> tuple[int, str]:
    """The error value and message of an ERROR or ERROR_OFFSET chunk (and the offset for
    the latter, appended to the message)."""
    if len(data) < 6:
        raise NbdProtocolError("error chunk too short")
    error, length = struct.unpack_from(">IH", data)
    tail = 8 if kind == CHUNK_ERROR_OFFSET else 0
    if len(data) != 6 + length + tail:
        raise NbdProtocolError("error chunk of the wrong length")
    message = printable(data[6 : 6 + length].decode("utf-8", "replace"))
    if tail:
        (offset,) = struct.unpack_from(">Q", data, 6 + length)
        message = f"{message} (at offset {offset})" if message else f"at offset {offset}"
    if error == 0:
        raise NbdProtocolError("error chunk with error value 0")
    return int(error), message


def _exact(data: bytes, size: int, what: str) -> None:
    if len(data) != size:
        raise NbdProtocolError(f"{what} of {len(data)} bytes, not {size}")


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0
