"""A read-only FAT12/16/32 reader over a partition's bytes: walk directories (8.3 and long
names, compared without case as FAT does) and read a file, to find an EFI system
partition's boot loaders without mounting it.

Pure: ``read(offset, length) -> bytes`` is the disk's reader and ``start``/``size`` the
partition's place on it. Limits keep a damaged or hostile volume from making us read
much: at most ``MAX_DIR_ENTRIES`` entries per directory, files of at most the size the
caller allows, cluster chains that loop or leave the volume are errors
(:class:`FatError`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .layout import Reader, read_padded

#: Entries read from one directory at most (65,536 is FAT's own limit per directory).
MAX_DIR_ENTRIES = 65536
_ENTRY = 32
_ATTR_LFN = 0x0F
_ATTR_DIRECTORY = 0x10
_ATTR_VOLUME = 0x08


class FatError(ValueError):
    """The volume is not a FAT file system this reader can read, or is damaged."""


@dataclass(frozen=True, slots=True)
class FatEntry:
    """One directory entry: its name (the long name when there is one), whether it is a
    directory, its first cluster and size in bytes."""

    name: str
    is_dir: bool
    cluster: int
    size: int


class FatVolume:
    """A FAT volume on a disk. Build with :meth:`open`."""

    def __init__(self, read: Reader, start: int, size: int, boot: bytes) -> None:
        self._read = read
        self._start = start
        bps, spc, reserved, fats, root_entries, total16 = struct.unpack_from("<HBHBHH", boot, 11)
        fat16, total32, fat32 = (
            struct.unpack_from("<H", boot, 22)[0],
            *struct.unpack_from("<I", boot, 32),
            *struct.unpack_from("<I", boot, 36),
        )
        if (
            bps not in (512, 1024, 2048, 4096)
            or spc == 0
            or spc & (spc - 1)
            or boot[510:] != (b"\x55\xaa")
        ):
            raise FatError("no FAT boot sector (bad sector size, cluster size or signature)")
        if reserved == 0 or fats == 0:
            raise FatError("no FAT boot sector (no reserved sectors or no FAT)")
        fat_sectors = fat16 or fat32
        total = total16 or total32
        root_sectors = (root_entries * _ENTRY + bps - 1) // bps
        first_data = reserved + fats * fat_sectors + root_sectors
        if fat_sectors == 0 or total <= first_data or total * bps > size:
            raise FatError("the FAT boot sector's sizes do not fit the partition")
        self.sector = bps
        self.cluster_size = bps * spc
        self.clusters = (total - first_data) // spc
        self.kind = (
            "fat12" if self.clusters < 4085 else "fat16" if self.clusters < 65525 else "fat32"
        )
        self._fat = reserved * bps
        self._fat_bytes = fat_sectors * bps
        self._root = (reserved + fats * fat_sectors) * bps
        self._root_bytes = root_sectors * bps
        self._data = first_data * bps
        self.root_cluster = struct.unpack_from("<I", boot, 44)[0] if self.kind == "fat32" else 0
        self._fat_cache: dict[int, bytes] = {}

    @classmethod
    def open(cls, read: Reader, start: int, size: int) -> FatVolume:
        """The FAT volume of the ``size`` bytes at ``start``; :class:`FatError` if none."""
        if size < 512:
            raise FatError("the partition is too small for a FAT file system")
        return cls(read, start, size, read_padded(read, start, 512))

    def _at(self, offset: int, length: int) -> bytes:
        return read_padded(self._read, self._start + offset, length)

    def _next(self, cluster: int) -> int | None:
        """The cluster after ``cluster`` in its chain; None at its end."""
        width = 4 if self.kind == "fat32" else 2
        where = cluster + cluster // 2 if self.kind == "fat12" else cluster * width
        if where + width > self._fat_bytes:
            raise FatError(f"cluster {cluster} is past the end of the FAT")
        page = where // self.sector
        raw = b""
        for number in (page, page + 1):
            if number not in self._fat_cache:
                self._fat_cache[number] = self._at(self._fat + number * self.sector, self.sector)
            raw += self._fat_cache[number]
        offset = where - page * self.sector
        if self.kind == "fat12":
            value = struct.unpack_from("<H", raw, offset)[0]
            value = value >> 4 if cluster & 1 else value & 0xFFF
            end = value >= 0xFF8
        elif self.kind == "fat16":
            value = struct.unpack_from("<H", raw, offset)[0]
            end = value >= 0xFFF8
        else:
            value = struct.unpack_from("<I", raw, offset)[0] & 0x0FFFFFFF
            end = value >= 0x0FFFFFF8
        if end:
            return None
        if not 2 <= value < self.clusters + 2:
            raise FatError(f"cluster {cluster} points to {value}, outside the volume")
        return int(value)

    def _chain(self, first: int, limit: int) -> list[int]:
        """The clusters of a chain from ``first``, at most ``limit`` of them."""
        chain: list[int] = []
        seen: set[int] = set()
        cluster: int | None = first
        while cluster is not None:
            if not 2 <= cluster < self.clusters + 2:
                raise FatError(f"cluster {cluster} is outside the volume")
            if cluster in seen:
                raise FatError(f"the cluster chain from {first} loops")
            if len(chain) >= limit:
                break
            seen.add(cluster)
            chain.append(cluster)
            cluster = self._next(cluster)
        return chain

    def _cluster_bytes(self, cluster: int) -> bytes:
        return self._at(self._data + (cluster - 2) * self.cluster_size, self.cluster_size)

    def list_dir(self, cluster: int) -> list[FatEntry]:
        """The entries of the directory at ``cluster`` (0: the root directory)."""
        if cluster == 0 and self.kind != "fat32":
            raw = self._at(self._root, self._root_bytes)
        else:
            first = cluster or self.root_cluster
            limit = MAX_DIR_ENTRIES * _ENTRY // self.cluster_size + 1
            raw = b"".join(self._cluster_bytes(c) for c in self._chain(first, limit))
        return _entries(raw[: MAX_DIR_ENTRIES * _ENTRY])

    def find(self, path: str) -> FatEntry | None:
        """The entry at ``path`` (``EFI/BOOT/BOOTX64.EFI``, ``/`` or ``\\`` between
        names, any case); None when a part of it is missing."""
        parts = [p for p in path.replace("\\", "/").split("/") if p]
        entry: FatEntry | None = FatEntry("", True, 0, 0)
        for part in parts:
            if entry is None or not entry.is_dir:
                return None
            entry = next(
                (e for e in self.list_dir(entry.cluster) if e.name.lower() == part.lower()), None
            )
        return entry

    def read_file(self, entry: FatEntry, max_size: int) -> bytes:
        """The file's bytes; :class:`FatError` when it is bigger than ``max_size``."""
        if entry.is_dir:
            raise FatError(f"{entry.name} is a directory")
        if entry.size > max_size:
            raise FatError(f"{entry.name} is {entry.size} bytes, over the {max_size} read")
        if entry.size == 0:
            return b""
        needed = -(-entry.size // self.cluster_size)
        chain = self._chain(entry.cluster, needed)
        if len(chain) < needed:
            raise FatError(f"{entry.name}: its cluster chain ends before its size")
        return b"".join(self._cluster_bytes(c) for c in chain)[: entry.size]


def _short_name(raw: bytes) -> str:
    flags = raw[12]
    base = raw[:8].decode("latin-1").rstrip(" ")
    ext = raw[8:11].decode("latin-1").rstrip(" ")
    if base.startswith("\x05"):
        base = "\xe5" + base[1:]
    if flags & 0x08:
        base = base.lower()
    if flags & 0x10:
        ext = ext.lower()
    return f"{base}.{ext}" if ext else base


def _long_part(raw: bytes) -> str:
    units = raw[1:11] + raw[14:26] + raw[28:32]
    text = units.decode("utf-16-le", errors="replace")
    return text.split("\x00", 1)[0].replace("\uffff", "")


def _entries(raw: bytes) -> list[FatEntry]:
    found: list[FatEntry] = []
    long_parts: list[str] = []
    for at in range(0, len(raw) - _ENTRY + 1, _ENTRY):
        entry = raw[at : at + _ENTRY]
        if entry[0] == 0:
            break
        if entry[0] == 0xE5:
            long_parts = []
            continue
        attr = entry[11]
        if attr & 0x3F == _ATTR_LFN:
            if entry[0] & 0x40:
                long_parts = []
            long_parts.insert(0, _long_part(entry))
            continue
        name = "".join(long_parts) or _short_name(entry)
        long_parts = []
        if attr & _ATTR_VOLUME or name in (".", ".."):
            continue
        high, low = struct.unpack_from("<H", entry, 20)[0], struct.unpack_from("<H", entry, 26)[0]
        size = struct.unpack_from("<I", entry, 28)[0]
        found.append(FatEntry(name, bool(attr & _ATTR_DIRECTORY), high << 16 | low, size))
    return found
