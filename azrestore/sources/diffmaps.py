"""What a differencing VHD or VHDX file holds, read from its own tables (qemu reads
neither): where its present sectors lie in the file, which ranges it says are zeros,
where its parent may be, and the identity that parent must have. Blocking: called while
the chain is opened, in a worker thread.
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass

from ..errors import InputError
from ..formats import vhd_dynamic, vhdx, vhdx_parent
from ..formats.sizes import FOOTER_SIZE, SECTOR
from ..formats.vhd import DISK_TYPE_DIFFERENCING, VhdError, VhdFooter
from .qemu.hostmap import HostMap

#: Host offsets from here up mark ranges the child says read as zeros (``ZERO_HOST +
#: start``, so that runs of them merge); no file reaches it.
ZERO_HOST = 1 << 62
#: Largest BAT, metadata region and log read (a 64 TiB VHDX of 1 MiB blocks: 512 MiB).
_MAX_TABLE = 1 << 30
_MAX_LOG = 64 << 20
_OLD_CODES = (vhd_dynamic.WI2R, vhd_dynamic.WI2K)
_BAD = (vhd_dynamic.VhdDynamicError, vhdx.VhdxError, VhdError, struct.error)


@dataclass(frozen=True, slots=True)
class ChildMap:
    """One differencing file: its virtual size; its ranges (data at a file offset, or
    zeros at :data:`ZERO_HOST`); what is in neither comes from the parent, looked for at
    ``candidates`` (in order), which must have one of the ``linkages``."""

    format: str
    size: int
    ranges: HostMap
    named: str
    candidates: tuple[str, ...]
    linkages: tuple[bytes, ...]


def differencing_kind(path: str) -> str | None:
    """``vpc`` or ``vhdx`` for a differencing VHD or VHDX file, else None (also for what
    cannot be read: its own opener judges it)."""
    try:
        with open(path, "rb", buffering=0) as handle:
            head = handle.read(FOOTER_SIZE)
            if head[:8] == b"conectix" and len(head) == FOOTER_SIZE:
                return "vpc" if VhdFooter.parse(head).disk_type == DISK_TYPE_DIFFERENCING else None
            if head[:8] != b"vhdxfile":
                return None
            handle.seek(vhdx.REGION_TABLE_OFFSET)
            regions = vhdx.parse_region_table(handle.read(vhdx.REGION_TABLE_SIZE))
            meta = regions[vhdx.METADATA_GUID]
            if meta.length > _MAX_TABLE:
                return None
            handle.seek(meta.offset)
            return "vhdx" if vhdx.parse_metadata(handle.read(meta.length)).has_parent else None
    except (OSError, KeyError, *_BAD):
        return None


def _within(offset: int, length: int, file_size: int) -> None:
    if offset < 0 or length < 0 or offset + length > file_size:
        raise vhd_dynamic.VhdDynamicError(
            f"{length} bytes at offset {offset}, past the file's end ({file_size} bytes)"
        )


def _pread(fd: int, offset: int, length: int, file_size: int) -> bytes:
    _within(offset, length, file_size)
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise vhd_dynamic.VhdDynamicError(f"a short read at offset {offset}")
    return data


def _candidates(child: str, relative: list[str], absolute: list[str]) -> tuple[str, ...]:
    """Where to look for the parent: each relative path beside the child (Windows
    separators made ``/``), then each absolute path's file name beside the child."""
    folder = os.path.dirname(os.path.abspath(child))
    found: list[str] = []
    for name in relative:
        text = name.replace("\\", "/")
        if text.startswith("//") or (len(text) > 1 and text[1] == ":"):
            absolute = [*absolute, name]  # not relative after all
            continue
        found.append(os.path.normpath(os.path.join(folder, text)))
    for name in absolute:
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        if base and base not in (".", ".."):
            found.append(os.path.join(folder, base))
    return tuple(dict.fromkeys(found))


def read_vhd_child(path: str, fd: int) -> ChildMap:
    """The map of a differencing VHD open at ``fd``."""
    try:
        return _vhd_child(path, fd)
    except _BAD as exc:
        raise InputError(f"{path}: a malformed differencing VHD: {exc}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def _vhd_child(path: str, fd: int) -> ChildMap:
    file_size = os.fstat(fd).st_size
    try:
        footer = VhdFooter.parse(_pread(fd, file_size - FOOTER_SIZE, FOOTER_SIZE, file_size))
    except _BAD:  # the footer's copy at the start, which a damaged end may not have
        footer = VhdFooter.parse(_pread(fd, 0, FOOTER_SIZE, file_size))
    if footer.disk_type != DISK_TYPE_DIFFERENCING:
        raise VhdError(f"disk type {footer.disk_type}, not differencing")
    size = footer.current_size
    if size <= 0 or size % SECTOR:
        raise VhdError(f"virtual size {size}")
    header = vhd_dynamic.parse_header(
        _pread(fd, footer.data_offset, vhd_dynamic.HEADER_SIZE, file_size), virtual_size=size
    )
    entries = header.max_table_entries
    bat = vhd_dynamic.parse_bat(_pread(fd, header.table_offset, 4 * entries, file_size), entries)
    ranges = HostMap()
    block, bitmap_bytes = header.block_size, header.bitmap_size
    for index in range(-(-size // block)):
        sector = bat[index]
        if sector == vhd_dynamic.UNUSED:
            continue
        start = index * block
        length = min(block, size - start)
        data = sector * SECTOR + bitmap_bytes
        _within(data, length, file_size - FOOTER_SIZE)
        bitmap = _pread(fd, sector * SECTOR, bitmap_bytes, file_size)
        for first, count in vhd_dynamic.sector_runs(bitmap, length // SECTOR):
            ranges.add(start + first * SECTOR, count * SECTOR, data + first * SECTOR)
    relative: list[str] = []
    absolute: list[str] = []
    for locator in header.locators:
        if locator.code not in (vhd_dynamic.W2RU, vhd_dynamic.W2KU, *_OLD_CODES):
            continue
        text = vhd_dynamic.locator_path(
            locator, _pread(fd, locator.offset, locator.length, file_size)
        )
        if text:
            is_relative = locator.code in (vhd_dynamic.W2RU, vhd_dynamic.WI2R)
            (relative if is_relative else absolute).append(text)
    if header.parent_name:
        absolute.append(header.parent_name)
    named = (relative or absolute or [""])[0]
    if not named:
        raise VhdError("no parent locator or parent name")
    return ChildMap(
        "vpc",
        size,
        ranges,
        named,
        _candidates(path, relative, absolute),
        (header.parent_unique_id,),
    )


def read_vhdx_child(path: str, fd: int) -> ChildMap:
    """The map of a differencing VHDX open at ``fd``."""
    try:
        return _vhdx_child(path, fd)
    except _BAD as exc:
        raise InputError(f"{path}: a malformed differencing VHDX: {exc}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def _vhdx_child(path: str, fd: int) -> ChildMap:
    file_size = os.fstat(fd).st_size
    first, second = (
        _pread(fd, offset, vhdx_parent.HEADER_SIZE, file_size)
        for offset in vhdx_parent.HEADER_OFFSETS
    )
    header = vhdx_parent.current_header(first, second)
    if header.log_guid.int and header.log_length:
        log = _pread(fd, header.log_offset, min(header.log_length, _MAX_LOG), file_size)
        if vhdx_parent.log_has_entries(log, header.log_guid):
            raise InputError(
                f"{path}: its log holds changes not yet written to the disk (open it"
                " once in Hyper-V, e.g. Mount-VHD, so that the log is replayed)"
            )
    regions = vhdx.parse_region_table(
        _pread(fd, vhdx.REGION_TABLE_OFFSET, vhdx.REGION_TABLE_SIZE, file_size)
    )
    meta, bat_region = regions[vhdx.METADATA_GUID], regions[vhdx.BAT_GUID]
    if max(meta.length, bat_region.length) > _MAX_TABLE:
        raise vhdx.VhdxError("a metadata region or BAT over 1 GiB")
    metadata = _pread(fd, meta.offset, meta.length, file_size)
    parameters = vhdx.parse_metadata(metadata)
    item = vhdx.metadata_items(metadata).get(vhdx_parent.PARENT_LOCATOR)
    if item is None:
        raise vhdx.VhdxError("a differencing VHDX without a parent locator")
    locator = vhdx_parent.parse_parent_locator(item)
    bat = _pread(fd, bat_region.offset, bat_region.length, file_size)
    blocks, bitmaps = vhdx_parent.differencing_blocks(bat, parameters)
    ranges = HostMap()
    size, block = parameters.virtual_size, parameters.block_size
    lss = parameters.logical_sector_size
    for entry in blocks:
        start = entry.index * block
        length = min(block, size - start)
        if entry.offset == 0:
            ranges.add(start, length, ZERO_HOST + start)
            continue
        _within(entry.offset, length, file_size)
        if entry.state == vhdx.BLOCK_FULLY_PRESENT:
            ranges.add(start, length, entry.offset)
            continue
        at, sectors = vhdx_parent.bitmap_slice(entry.index, parameters)
        chunk = bitmaps[entry.index // parameters.chunk_ratio]
        bits = _pread(fd, chunk + at, -(-sectors // 8), file_size)
        for first_sector, count in vhd_dynamic.sector_runs(bits, sectors, msb_first=False):
            ranges.add(start + first_sector * lss, count * lss, entry.offset + first_sector * lss)
    paths = locator.paths
    relative = [paths["relative_path"]] if "relative_path" in paths else []
    absolute = [paths[key] for key in ("volume_path", "absolute_win32_path") if key in paths]
    return ChildMap(
        "vhdx",
        size,
        ranges,
        (relative or absolute)[0],
        _candidates(path, relative, absolute),
        tuple(link.bytes_le for link in locator.linkages),
    )


def parent_identity(path: str, fmt: str, child: str) -> bytes:
    """The identity a child links its parent by: a VHD's footer Unique Id, a VHDX's
    DataWriteGuid. Raises InputError naming ``child`` when ``path`` is no such file."""
    kind = "VHD" if fmt == "vpc" else "VHDX"
    try:
        with open(path, "rb", buffering=0) as handle:
            if fmt == "vpc":
                head = handle.read(FOOTER_SIZE)
                if not head.startswith(b"conectix"):
                    handle.seek(max(0, os.fstat(handle.fileno()).st_size - FOOTER_SIZE))
                    head = handle.read(FOOTER_SIZE)
                return VhdFooter.parse(head).unique_id
            if handle.read(8) != b"vhdxfile":
                raise vhdx.VhdxError("no VHDX signature")
            handle.seek(vhdx_parent.HEADER_OFFSETS[0])
            both = handle.read(2 * vhdx_parent.HEADER_SIZE + 60 * 1024)
            header = vhdx_parent.current_header(
                both[: vhdx_parent.HEADER_SIZE], both[64 * 1024 : 64 * 1024 + 4096]
            )
            return header.data_write_guid.bytes_le
    except _BAD as exc:
        raise InputError(f"{child}: its parent {path} is not a {kind}: {exc}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def show_identity(link: bytes, fmt: str) -> str:
    """A child's link or a parent's identity as people see it (a GUID)."""
    return str(uuid.UUID(bytes_le=link) if fmt == "vhdx" else uuid.UUID(bytes=link))
