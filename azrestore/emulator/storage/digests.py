"""Content digests of a write: ``Content-MD5`` and ``x-ms-content-crc64`` checked against
the body as Azure does (azure-storage-extensions computes the CRC64, the reference the
client's own CRC64 is held to)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Mapping
from typing import Final

from azure.storage.extensions import checksums

from azrestore.emulator.storage.errors import Rejection, invalid_header

__all__ = ["check_digests"]

# Bodies at least this big are hashed in a worker thread (hashlib and crc64 release the GIL).
_HASH_IN_THREAD: Final = 256 * 1024


async def check_digests(headers: Mapping[str, str], body: list[bytes], length: int) -> None:
    """Raise Azure's :class:`Rejection` if a digest header is malformed or does not match
    ``body`` (its chunks, ``length`` bytes in all)."""
    md5_text = headers.get("Content-MD5")
    crc_text = headers.get("x-ms-content-crc64")
    if md5_text is None and crc_text is None:
        return
    md5 = _decode_digest(md5_text, 16, "Content-MD5") if md5_text is not None else None
    crc = _decode_digest(crc_text, 8, "x-ms-content-crc64") if crc_text is not None else None
    if length >= _HASH_IN_THREAD:
        got_md5, got_crc = await asyncio.to_thread(_digests, body, md5 is not None, crc is not None)
    else:
        got_md5, got_crc = _digests(body, md5 is not None, crc is not None)
    if md5 is not None and got_md5 != md5:
        raise Rejection(
            400,
            "Md5Mismatch",
            "The MD5 value specified in the request did not match with the MD5 value "
            "calculated by the server.",
            {
                "UserSpecifiedMd5": md5_text or "",
                "ServerCalculatedMd5": base64.b64encode(got_md5 or b"").decode(),
            },
        )
    if crc is not None and got_crc != crc:
        raise Rejection(
            400,
            "Crc64Mismatch",
            "The CRC64 value specified in the request did not match with the CRC64 value "
            "calculated by the server.",
            {
                "UserSpecifiedCrc": crc_text or "",
                "ServerCalculatedCrc": base64.b64encode(got_crc or b"").decode(),
            },
        )


def _decode_digest(text: str, size: int, header: str) -> bytes:
    try:
        value = base64.b64decode(text, validate=True)
    except ValueError:
        value = b""
    if len(value) != size:
        if header == "Content-MD5":
            raise Rejection(
                400,
                "InvalidMd5",
                "The MD5 value specified in the request is invalid. The MD5 value must be "
                "128 bits and Base64-encoded.",
            )
        raise invalid_header(header, text)
    return value


def _digests(chunks: list[bytes], md5: bool, crc: bool) -> tuple[bytes | None, bytes | None]:
    md5_state = hashlib.md5() if md5 else None
    crc_state = 0
    for chunk in chunks:
        if md5_state is not None:
            md5_state.update(chunk)
        if crc:
            crc_state = checksums.crc64.compute(chunk, crc_state)
    got_md5 = md5_state.digest() if md5_state is not None else None
    got_crc = crc_state.to_bytes(8, "little") if crc else None
    return got_md5, got_crc
