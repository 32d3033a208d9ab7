"""The uploader's CRC64 (awscrt) against Azure's own (azure-storage-extensions)."""

from __future__ import annotations

from azure.storage.extensions import checksums
from hypothesis import given
from hypothesis import strategies as st

from azrestore.azure.blobrequests import crc64


def azure_crc64(data: bytes) -> bytes:
    return int(checksums.crc64.compute(data, 0)).to_bytes(8, "little")


@given(data=st.binary(max_size=70_000), start=st.integers(0, 600), stop=st.integers(0, 600))
def test_crc64_matches_azure_storage_extensions(data: bytes, start: int, stop: int) -> None:
    # A slice of a pooled buffer, as the pipeline passes it.
    view = memoryview(bytearray(data))[start : max(start, len(data) - stop)]
    assert crc64(view) == azure_crc64(bytes(view))
    assert crc64(bytes(view)) == azure_crc64(bytes(view))


def test_crc64_known_value() -> None:
    # CRC-64/NVME's check value: the CRC of "123456789".
    assert int.from_bytes(crc64(b"123456789"), "little") == 0xAE8B14860A799888
