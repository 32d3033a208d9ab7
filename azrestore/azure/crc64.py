"""Azure Storage's CRC64 (x-ms-content-crc64): awscrt's carry-less multiplication for the
bulk of an upload, a table in Python for the first few small bodies, so that an upload
which sends little (the footer of an empty disk) need not load awscrt's 12 MB library."""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable

#: CRC-64/NVME (Azure's polynomial and conventions), bit-reflected.
_POLY = 0x9A6C9329AC4BC9B5
_MASK = (1 << 64) - 1
#: Bytes the table may take before awscrt is loaded: loading it costs about 40 ms of CPU,
#: the table about 0.1 us a byte, so a few KiB (an empty disk's footer, a sparse disk's
#: first runs) are cheaper here; a dense upload loads awscrt at its first chunk.
PYTHON_BYTES = 64 * 1024

_table: list[int] = []
_fast: Callable[[memoryview | bytes], int] | None = None
_python_left = PYTHON_BYTES


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


def crc64_python(data: memoryview | bytes) -> int:
    """CRC-64/NVME of ``data``, one table lookup per byte (slow: for small bodies)."""
    if not _table:
        _table.extend(_make_table())
    table = _table
    crc = _MASK
    for byte in memoryview(data).cast("B"):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _MASK


def crc64(data: memoryview | bytes) -> bytes:
    """Azure Storage's CRC64 of ``data`` as x-ms-content-crc64 carries it (8 bytes, little
    endian). Azure's polynomial and conventions are CRC-64/NVME's; awscrt computes that with
    carry-less multiplication, many times faster than azure-storage-extensions, which the
    strict gateway keeps as the reference (figures in docs/benchmarks.md). Until
    :data:`PYTHON_BYTES` have been summed, small bodies are summed in Python instead."""
    global _fast, _python_left
    if _fast is None:
        size = memoryview(data).nbytes
        if size <= _python_left:  # threads may race here: either way the CRC is right
            _python_left -= size
            return crc64_python(data).to_bytes(8, "little")
        from awscrt.checksums import crc64nvme

        _fast = crc64nvme
    return int(_fast(data)).to_bytes(8, "little")
