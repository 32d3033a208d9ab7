"""A streamOptimized VMDK written as VMware writes one (qemu-img writes its grain
directory up front): grains, then each grain table, the grain directory, the footer with
the header's copy and the end-of-stream marker, the header at the start saying
``GD_AT_END``. qemu reads these, so it judges what azrestore reads from them."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

SECTOR = 512
GRAIN = 64 * 1024
GD_AT_END = 0xFFFFFFFFFFFFFFFF
_DESCRIPTOR_SECTORS = 20
_OVERHEAD = 1 + _DESCRIPTOR_SECTORS


def header(
    capacity: int,
    gd_offset: int,
    *,
    version: int = 3,
    flags: int = 0x30001,
    grain: int = GRAIN,
    gtes: int = 512,
    algorithm: int = 1,
) -> bytes:
    body = b"KDMV" + struct.pack(
        "<IIQQQQIQQQB4sH",
        version,
        flags,
        capacity // SECTOR,
        grain // SECTOR,
        1,
        _DESCRIPTOR_SECTORS,
        gtes,
        0,
        gd_offset,
        _OVERHEAD,
        0,
        b"\n \r\n",
        algorithm,
    )
    return body.ljust(SECTOR, b"\0")


def _descriptor(name: str, capacity: int) -> bytes:
    text = (
        "# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=ffffffff\n"
        'createType="streamOptimized"\n\n# Extent description\n'
        f'RDONLY {capacity // SECTOR} SPARSE "{name}"\n\n# The Disk Data Base\n#DDB\n\n'
        'ddb.virtualHWVersion = "4"\nddb.adapterType = "lsilogic"\n'
    )
    return text.encode().ljust(_DESCRIPTOR_SECTORS * SECTOR, b"\0")


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % SECTOR)


def _marker(value: int, kind: int) -> bytes:
    return struct.pack("<QII", value, 0, kind).ljust(SECTOR, b"\0")


def write_stream(
    path: Path,
    data: bytes,
    *,
    zeroed: frozenset[int] = frozenset(),
    gd_at_end: bool = True,
    level: int = 6,
    **header_fields: int,
) -> Path:
    """Write ``data`` (whole sectors) as a stream: grains that are all zeros left out,
    those in ``zeroed`` marked zeroed (GT entry 1; add flag 4 in ``flags``)."""
    capacity = len(data)
    grains = -(-capacity // GRAIN)
    tables = -(-grains // 512)
    body = bytearray(_descriptor(path.name, capacity))
    entries = [0] * (tables * 512)
    for index in range(grains):
        chunk = data[index * GRAIN : (index + 1) * GRAIN]
        if index in zeroed:
            entries[index] = 1
            continue
        if not any(chunk):
            continue
        entries[index] = 1 + len(body) // SECTOR
        packed = zlib.compress(chunk, level)
        body += _pad(struct.pack("<QI", index * GRAIN // SECTOR, len(packed)) + packed)
    directory = []
    for table in range(tables):
        values = entries[table * 512 : (table + 1) * 512]
        if not any(values):
            directory.append(0)
            continue
        body += _marker(4, 1)
        directory.append(1 + len(body) // SECTOR)
        body += struct.pack("<512I", *values)
    body += _marker(-(-4 * tables // SECTOR), 2)
    gd_sector = 1 + len(body) // SECTOR
    body += _pad(struct.pack(f"<{tables}I", *directory))
    body += _marker(1, 3)
    body += header(capacity, gd_sector, **header_fields)
    body += _marker(0, 0)
    start = header(capacity, GD_AT_END if gd_at_end else gd_sector, **header_fields)
    path.write_bytes(start + bytes(body))
    return path
