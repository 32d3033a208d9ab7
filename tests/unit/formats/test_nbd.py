"""The NBD codec: messages as the spec lays them out, and parsers that meet any bytes with
NbdProtocolError or a value, never another exception."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrestore.formats import nbd
from azrestore.formats.nbd import NbdProtocolError


def test_greeting_and_client_flags() -> None:
    greeting = struct.pack(">QQH", nbd.NBDMAGIC, nbd.IHAVEOPT, 3)
    assert nbd.parse_greeting(greeting) == 3
    assert nbd.client_flags(3) == struct.pack(">I", 3)
    assert nbd.client_flags(1) == struct.pack(">I", 1)


@pytest.mark.parametrize(
    ("greeting", "words"),
    [
        (struct.pack(">QQH", 1, nbd.IHAVEOPT, 3), "not an NBD server"),
        (struct.pack(">QQH", nbd.NBDMAGIC, 0x00420281861253, 0), "old NBD handshake"),
        (struct.pack(">QQH", nbd.NBDMAGIC, nbd.IHAVEOPT, 0), "fixed newstyle"),
    ],
)
def test_greetings_refused(greeting: bytes, words: str) -> None:
    with pytest.raises(NbdProtocolError, match=words):
        nbd.parse_greeting(greeting)


def test_go_carries_the_export_name_and_the_infos() -> None:
    message = nbd.encode_go("disk 1")
    magic, option, length = struct.unpack_from(">QII", message)
    assert (magic, option, length) == (nbd.IHAVEOPT, nbd.OPT_GO, len(message) - 16)
    assert message[16:] == struct.pack(">I", 6) + b"disk 1" + struct.pack(">HH", 1, 3)


def test_set_meta_context_asks_for_base_allocation() -> None:
    message = nbd.encode_set_meta_context("", ("base:allocation",))
    assert message[16:] == struct.pack(">II", 0, 1) + struct.pack(">I", 15) + b"base:allocation"


def test_option_reply_and_errors() -> None:
    data = struct.pack(">QIII", nbd.REPLY_MAGIC, nbd.OPT_GO, nbd.REP_ERR_UNKNOWN, 0)
    reply = nbd.parse_option_reply(data, nbd.OPT_GO)
    assert reply.is_error and reply.error_text() == "no such export"
    with pytest.raises(NbdProtocolError, match="not to the option"):
        nbd.parse_option_reply(data, nbd.OPT_STRUCTURED_REPLY)


def test_infos() -> None:
    assert nbd.parse_info(struct.pack(">HQH", 0, 1 << 40, 3)) == nbd.ExportInfo(1 << 40, 3)
    sizes = nbd.parse_info(struct.pack(">HIII", 3, 512, 4096, 32 << 20))
    assert sizes == nbd.BlockSizes(512, 4096, 32 << 20)
    assert nbd.parse_info(struct.pack(">H", 1) + b"name") is None
    with pytest.raises(NbdProtocolError, match="impossible block sizes"):
        nbd.parse_info(struct.pack(">HIII", 3, 3, 4096, 32 << 20))


def test_request_layout() -> None:
    request = nbd.encode_request(nbd.CMD_READ, 7, 1 << 33, 65536)
    assert len(request) == nbd.REQUEST_SIZE
    assert struct.unpack(">IHHQQI", request) == (nbd.REQUEST_MAGIC, 0, 0, 7, 1 << 33, 65536)


def test_replies() -> None:
    simple = struct.pack(">IIQ", nbd.SIMPLE_REPLY_MAGIC, 5, 9)
    assert nbd.reply_header_size(simple[:4]) == 16
    header = nbd.parse_reply_header(simple, 0)
    assert (header.structured, header.error, header.handle, header.done) == (False, 5, 9, True)
    chunk = struct.pack(">IHHQI", nbd.STRUCTURED_REPLY_MAGIC, 0, nbd.CHUNK_OFFSET_DATA, 9, 520)
    header = nbd.parse_reply_header(chunk, 1024)
    assert (header.type, header.length, header.done) == (nbd.CHUNK_OFFSET_DATA, 520, False)
    with pytest.raises(NbdProtocolError, match="longer than allowed"):
        nbd.parse_reply_header(chunk, 100)


def test_chunks() -> None:
    assert nbd.parse_offset_hole(struct.pack(">QI", 4096, 512)) == (4096, 512)
    status = struct.pack(">IIIII", 1, 65536, 0, 4096, 3)
    assert nbd.parse_block_status(status) == (1, [(65536, 0), (4096, 3)])
    error = struct.pack(">IH", 5, 4) + b"oops"
    assert nbd.parse_error_chunk(error, nbd.CHUNK_ERROR) == (5, "oops")
    located = struct.pack(">IH", 5, 0) + struct.pack(">Q", 512)
    assert nbd.parse_error_chunk(located, nbd.CHUNK_ERROR_OFFSET) == (5, "at offset 512")
    assert nbd.errno_name(5) == "EIO" and nbd.errno_name(99) == "error 99"


PARSERS: list[Callable[[bytes], Any]] = [
    nbd.parse_greeting,
    lambda data: nbd.parse_option_reply(data, nbd.OPT_GO),
    nbd.parse_info,
    nbd.parse_export_name_reply,
    nbd.parse_meta_context,
    nbd.reply_header_size,
    lambda data: nbd.parse_reply_header(data, 1 << 20),
    nbd.parse_chunk_offset,
    nbd.parse_offset_hole,
    nbd.parse_block_status,
    lambda data: nbd.parse_error_chunk(data, nbd.CHUNK_ERROR),
    lambda data: nbd.parse_error_chunk(data, nbd.CHUNK_ERROR_OFFSET),
]

_MAGICS = st.sampled_from(
    [
        struct.pack(">I", nbd.SIMPLE_REPLY_MAGIC),
        struct.pack(">I", nbd.STRUCTURED_REPLY_MAGIC),
        struct.pack(">Q", nbd.NBDMAGIC),
        struct.pack(">Q", nbd.REPLY_MAGIC),
        b"",
    ]
)


@settings(max_examples=300)
@given(st.sampled_from(range(len(PARSERS))), _MAGICS, st.binary(max_size=64))
def test_parsers_meet_any_bytes_with_a_protocol_error(
    which: int, magic: bytes, data: bytes
) -> None:
    with contextlib.suppress(NbdProtocolError):
        PARSERS[which](magic + data)


@settings(max_examples=200)
@given(
    st.integers(0, 0xFFFFFFFF),
    st.lists(st.tuples(st.integers(1, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF)), min_size=1),
)
def test_block_status_round_trip(context: int, extents: list[tuple[int, int]]) -> None:
    data = struct.pack(">I", context) + b"".join(struct.pack(">II", *e) for e in extents)
    assert nbd.parse_block_status(data) == (context, extents)


@settings(max_examples=200)
@given(
    st.sampled_from([nbd.CMD_READ, nbd.CMD_BLOCK_STATUS, nbd.CMD_DISC]),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**63),
    st.integers(0, 0xFFFFFFFF),
)
def test_request_round_trip(command: int, handle: int, offset: int, length: int) -> None:
    fields = struct.unpack(">IHHQQI", nbd.encode_request(command, handle, offset, length))
    assert fields == (nbd.REQUEST_MAGIC, 0, command, handle, offset, length)
