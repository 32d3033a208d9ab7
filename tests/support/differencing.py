"""Differencing VHDs and VHDXs for tests, which qemu cannot make: a dynamic image made by
qemu-img and written by qemu-io is turned into a differencing one by editing its
structures from the specifications (written here, apart from azrestore's parsers), and
the view it must read as is computed from qemu's raw views of parent and child and the
sector bitmaps set here."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable
from pathlib import Path

from tests.support.qemu import raw_view

SECTOR = 512


def _ones_complement(data: bytes | bytearray, skip: int) -> int:
    return ~(sum(data) - sum(data[skip : skip + 4])) & 0xFFFF_FFFF


def vhd_unique_id(path: Path) -> bytes:
    """A VHD's footer Unique Id (its last 512 bytes)."""
    return path.read_bytes()[-512:][68:84]


def make_vhd_child(
    child: Path,
    parent: Path,
    base_view: bytes,
    *,
    cleared: Iterable[int] = (),
    relative: str | None = None,
    absolute: str | None = None,
    parent_id: bytes | None = None,
) -> bytes:
    """Turn the dynamic VHD ``child`` into a differencing disk over ``parent`` (whose
    view is ``base_view``): disk type 4 in both footers, the parent's Unique Id in the
    header, W2ru/W2ku locators, the bitmap bits of the ``cleared`` sectors (virtual sector
    numbers, in allocated blocks) cleared. Returns the view it must read as."""
    top = raw_view(child, "vpc")
    data = bytearray(child.read_bytes())
    footer = bytearray(data[-512:])
    (header_at,) = struct.unpack_from(">Q", footer, 16)
    header = bytearray(data[header_at : header_at + 1024])
    (table_at,) = struct.unpack_from(">Q", header, 16)
    (entries, block) = struct.unpack_from(">II", header, 28)
    per_block = block // SECTOR
    bat = list(struct.unpack_from(f">{entries}I", data, table_at))
    for sector in cleared:
        entry = bat[sector // per_block]
        assert entry != 0xFFFF_FFFF, f"sector {sector} is in an unallocated block"
        bit = sector % per_block
        data[entry * SECTOR + bit // 8] &= ~(0x80 >> (bit % 8)) & 0xFF
    header[40:56] = vhd_unique_id(parent) if parent_id is None else parent_id
    header[64:576] = parent.name.encode("utf-16-be").ljust(512, b"\0")
    header[576:768] = bytes(192)
    body = data[:-512]
    for index, (code, text) in enumerate(((b"W2ru", relative), (b"W2ku", absolute))):
        if text is None:
            continue
        value = text.encode("utf-16-le")
        entry_at = 576 + 24 * index
        struct.pack_into(">4sIIIQ", header, entry_at, code, 1, len(value), 0, len(body))
        body += value.ljust(-(-len(value) // SECTOR) * SECTOR, b"\0")
    struct.pack_into(">I", header, 36, _ones_complement(header, 36))
    struct.pack_into(">I", footer, 60, 4)
    struct.pack_into(">I", footer, 64, _ones_complement(footer, 64))
    body[:512] = footer
    body[header_at : header_at + 1024] = header
    child.write_bytes(bytes(body + footer))
    size = len(top)
    view = bytearray(base_view[:size].ljust(size, b"\0"))
    cleared_set = set(cleared)
    for index, entry in enumerate(bat[: -(-size // block)]):
        if entry == 0xFFFF_FFFF:
            continue
        for sector in range(index * per_block, min((index + 1) * per_block, size // SECTOR)):
            if sector not in cleared_set:
                view[sector * SECTOR : (sector + 1) * SECTOR] = top[
                    sector * SECTOR : (sector + 1) * SECTOR
                ]
    return bytes(view)


def vhdx_data_write_guid(path: Path) -> bytes:
    """The DataWriteGuid (its 16 bytes as stored) of a VHDX's current header."""
    data = path.read_bytes()
    headers = [data[at : at + 4096] for at in (64 * 1024, 128 * 1024)]
    current = max(headers, key=lambda h: struct.unpack_from("<Q", h, 8)[0])
    return current[32:48]


_PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
_FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
_VHDX_TYPE = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")


def _locator(entries: dict[str, str]) -> bytes:
    keys = [(k.encode("utf-16-le"), v.encode("utf-16-le")) for k, v in entries.items()]
    head = _VHDX_TYPE.bytes_le + struct.pack("<HH", 0, len(keys))
    table = b""
    blob = b""
    start = len(head) + 12 * len(keys)
    for key, value in keys:
        key_at = start + len(blob)
        blob += key
        value_at = start + len(blob)
        blob += value
        table += struct.pack("<IIHH", key_at, value_at, len(key), len(value))
    return head + table + blob


def make_vhdx_child(
    child: Path,
    parent: Path,
    base_view: bytes,
    *,
    partial: dict[int, set[int]] | None = None,
    zero: Iterable[int] = (),
    locator: dict[str, str] | None = None,
    linkage: bytes | None = None,
) -> bytes:
    """Turn the dynamic VHDX ``child`` (1 MiB blocks, 512-byte sectors) into a
    differencing one over ``parent`` (whose view is ``base_view``): HasParent, a parent
    locator (``parent_linkage`` the parent's DataWriteGuid, ``relative_path`` its name
    unless ``locator`` says otherwise), ``partial`` blocks made PARTIALLY_PRESENT with
    only the given sectors (of the block) present in a sector bitmap block, ``zero``
    blocks in state PAYLOAD_BLOCK_ZERO, every other block qemu did not write NOT_PRESENT
    (from the parent). Returns the view it must read as."""
    top = raw_view(child, "vhdx")
    partial = partial or {}
    data = bytearray(child.read_bytes())
    regions = {}
    count = struct.unpack_from("<I", data, 196608 + 8)[0]
    for index in range(count):
        base = 196608 + 16 + 32 * index
        regions[uuid.UUID(bytes_le=bytes(data[base : base + 16]))] = struct.unpack_from(
            "<QI", data, base + 16
        )
    bat_at, _ = regions[uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08")]
    meta_at, meta_length = regions[uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")]
    (items,) = struct.unpack_from("<H", data, meta_at + 10)
    end = 64 * 1024
    for index in range(items):
        base = meta_at + 32 + 32 * index
        guid = uuid.UUID(bytes_le=bytes(data[base : base + 16]))
        offset, length = struct.unpack_from("<II", data, base + 16)
        end = max(end, offset + length)
        if guid == _FILE_PARAMETERS:
            data[meta_at + offset + 4] |= 2  # HasParent
    link = vhdx_data_write_guid(parent) if linkage is None else linkage
    entries = {"parent_linkage": "{" + str(uuid.UUID(bytes_le=link)) + "}"}
    entries.update(locator if locator is not None else {"relative_path": f".\\{parent.name}"})
    item = _locator(entries)
    item_at = -(-end // 8) * 8
    assert item_at + len(item) <= meta_length
    data[meta_at + item_at : meta_at + item_at + len(item)] = item
    base = meta_at + 32 + 32 * items
    data[base : base + 32] = _PARENT_LOCATOR.bytes_le + struct.pack(
        "<IIII", item_at, len(item), 4, 0
    )
    struct.pack_into("<H", data, meta_at + 10, items + 1)
    size = len(top)
    block = 1 << 20
    ratio = (1 << 23) * SECTOR // block
    blocks = -(-size // block)
    assert blocks <= ratio
    values = list(struct.unpack_from(f"<{blocks}Q", data, bat_at))
    if partial:
        bitmap_at = -(-len(data) // block) * block
        data += bytes(bitmap_at - len(data)) + bytes(block)
        struct.pack_into("<Q", data, bat_at + 8 * ratio, bitmap_at | 6)
        for index, sectors in partial.items():
            assert values[index] & 7 == 6, f"block {index} is not allocated"
            values[index] = (values[index] & ~7) | 7
            for sector in sectors:
                bit = index * (block // SECTOR) + sector
                data[bitmap_at + bit // 8] |= 1 << (bit % 8)
    for index, value in enumerate(values):
        if value & 7 in (1, 2, 3):  # qemu leaves unwritten blocks ZERO: from the parent now
            values[index] = 0
    for index in zero:
        values[index] = 2
    struct.pack_into(f"<{blocks}Q", data, bat_at, *values)
    child.write_bytes(bytes(data))
    view = bytearray(base_view[:size].ljust(size, b"\0"))
    for index, value in enumerate(values):
        start, stop = index * block, min((index + 1) * block, size)
        state = value & 7
        if state == 6:
            view[start:stop] = top[start:stop]
        elif state == 2:
            view[start:stop] = bytes(stop - start)
        elif state == 7:
            for sector in partial[index]:
                at = start + sector * SECTOR
                if at < stop:
                    view[at : at + SECTOR] = top[at : at + SECTOR]
    return bytes(view)


def _crc32c(data: bytes) -> int:
    """CRC-32C bit by bit (slow, and apart from azrestore's table-driven one)."""
    crc = 0xFFFF_FFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFF_FFFF


def give_vhdx_a_pending_log(path: Path) -> None:
    """Set a LogGuid in both of the VHDX's headers (CRC-32C made right) and write a log
    entry header carrying it at the log's start: a log that still needs replaying."""
    data = bytearray(path.read_bytes())
    log_guid = uuid.uuid4().bytes_le
    log_offset = 0
    for at in (64 * 1024, 128 * 1024):
        data[at + 48 : at + 64] = log_guid
        (log_offset,) = struct.unpack_from("<Q", data, at + 72)
        data[at + 4 : at + 8] = bytes(4)
        struct.pack_into("<I", data, at + 4, _crc32c(bytes(data[at : at + 4096])))
    entry = b"loge" + bytes(28) + log_guid
    data[log_offset : log_offset + len(entry)] = entry
    path.write_bytes(bytes(data))
