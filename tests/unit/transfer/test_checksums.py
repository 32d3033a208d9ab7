"""The uploader's CRC64 (awscrt, and the Python table for small bodies) against Azure's
own (azure-storage-extensions)."""

from __future__ import annotations

import subprocess
import sys

from azure.storage.extensions import checksums
from hypothesis import given
from hypothesis import strategies as st

from azrestore.azure.crc64 import PYTHON_BYTES, crc64, crc64_python


def azure_crc64(data: bytes) -> bytes:
    return int(checksums.crc64.compute(data, 0)).to_bytes(8, "little")


@given(data=st.binary(max_size=70_000), start=st.integers(0, 600), stop=st.integers(0, 600))
def test_crc64_matches_azure_storage_extensions(data: bytes, start: int, stop: int) -> None:
    # A slice of a pooled buffer, as the pipeline passes it.
    view = memoryview(bytearray(data))[start : max(start, len(data) - stop)]
    assert crc64(view) == azure_crc64(bytes(view))
    assert crc64(bytes(view)) == azure_crc64(bytes(view))


@given(data=st.binary(max_size=5000), start=st.integers(0, 60))
def test_python_table_matches_azure_storage_extensions(data: bytes, start: int) -> None:
    view = memoryview(bytearray(data))[start:]
    assert crc64_python(view).to_bytes(8, "little") == azure_crc64(bytes(view))


def test_crc64_known_value() -> None:
    # CRC-64/NVME's check value: the CRC of "123456789".
    assert int.from_bytes(crc64(b"123456789"), "little") == 0xAE8B14860A799888
    assert crc64_python(b"123456789") == 0xAE8B14860A799888


def test_small_bodies_do_not_load_awscrt() -> None:
    # An empty disk's upload sends one 512-byte footer: awscrt (40 ms to load) stays out;
    # past PYTHON_BYTES it is loaded, and the answers stay Azure's.
    code = (
        "import sys\n"
        "from azrestore.azure.crc64 import crc64, PYTHON_BYTES\n"
        "small = crc64(bytes(range(256)) * 2)\n"
        "assert '_awscrt' not in sys.modules\n"
        "big = crc64(bytes(PYTHON_BYTES + 1))\n"
        "assert '_awscrt' in sys.modules\n"
        "print(small.hex(), big.hex())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [
        azure_crc64(bytes(range(256)) * 2).hex(),
        azure_crc64(bytes(PYTHON_BYTES + 1)).hex(),
    ]
