"""A FAT32 file system, filled without mounting it: the Linux image's EFI system partition."""

from __future__ import annotations

import struct
from datetime import datetime
from pathlib import Path

from .tools import DemoError

#: Names to file contents, or to a directory's tree.
Tree = dict[str, "bytes | Tree"]


def _short_name(name: str) -> tuple[bytes, int]:
    """The 8.3 entry name, and the case flags Linux and Windows use for an all-lower
    base or extension (so that ``grub.cfg`` needs no long-name entries)."""
    base, _, ext = name.partition(".")
    flags = 0
    for part, flag in ((base, 0x08), (ext, 0x10)):
        if part.islower():
            flags |= flag
        elif not (part.isupper() or part.isdigit() or not part):
            raise ValueError(f"{name}: mixed case needs a long name")
    if not 1 <= len(base) <= 8 or len(ext) > 3:
        raise ValueError(f"{name}: not an 8.3 name")
    return f"{base.upper():<8}{ext.upper():<3}".encode("ascii"), flags


def _fat_date_time(when: datetime) -> tuple[int, int]:
    date = ((when.year - 1980) << 9) | (when.month << 5) | when.day
    clock = (when.hour << 11) | (when.minute << 5) | (when.second // 2)
    return date, clock


def _dir_entry(name: bytes, flags: int, attr: int, cluster: int, size: int) -> bytes:
    date, clock = _fat_date_time(datetime.now())
    return struct.pack(
        "<11sBBBHHHHHHHI",
        name,
        attr,
        flags,
        0,
        clock,
        date,
        date,
        cluster >> 16,
        clock,
        date,
        cluster & 0xFFFF,
        size,
    )


class Fat32:
    """Adds directories and files to a freshly made FAT32 image (``mkfs.vfat -F 32``):
    enough for an EFI system partition's few files, with no mount and no mtools."""

    def __init__(self, image: Path) -> None:
        self.image = image
        with image.open("rb") as handle:
            boot = handle.read(512)
            sector, per_cluster, reserved, fats = struct.unpack_from("<HBHB", boot, 11)
            fat16_size: int = struct.unpack_from("<H", boot, 22)[0]
            fat_size, _, _, root, fsinfo = struct.unpack_from("<IHHIH", boot, 36)
            if fat16_size or boot[82:87] != b"FAT32":
                raise DemoError(f"{image}: not a FAT32 file system")
            handle.seek(reserved * sector)
            self.fat = bytearray(handle.read(fat_size * sector))
        self.sector: int = sector
        self.root: int = root
        self.fsinfo: int = fsinfo
        self.fat_offsets: list[int] = [(reserved + n * fat_size) * sector for n in range(fats)]
        self.data: int = (reserved + fats * fat_size) * sector
        self.cluster_size: int = sector * per_cluster
        self.clusters = len(self.fat) // 4
        self.next_free = 3
        self.used = 0
        self.writes: list[tuple[int, bytes]] = []

    def _allocate(self, size: int) -> int:
        """A chain of contiguous clusters for ``size`` bytes; its first cluster."""
        count = max(1, -(-size // self.cluster_size))
        start = self.next_free
        while any(
            struct.unpack_from("<I", self.fat, 4 * c)[0] & 0x0FFFFFFF
            for c in range(start, start + count)
        ):
            start += 1
        if start + count > self.clusters:
            raise DemoError(f"{self.image}: full")
        for cluster in range(start, start + count):
            last = cluster == start + count - 1
            struct.pack_into("<I", self.fat, 4 * cluster, 0x0FFFFFFF if last else cluster + 1)
        self.next_free = start + count
        self.used += count
        return start

    def _offset(self, cluster: int) -> int:
        return self.data + (cluster - 2) * self.cluster_size

    def add(self, tree: Tree, parent: int = 0) -> list[bytes]:
        """Write ``tree`` (name -> file bytes, or a dict for a directory) into the
        directory whose first cluster is ``parent`` (0: the root); its entries."""
        entries = []
        for name, content in tree.items():
            short, flags = _short_name(name)
            if isinstance(content, bytes):
                cluster = self._allocate(len(content)) if content else 0
                if content:
                    self.writes.append((self._offset(cluster), content))
                entries.append(_dir_entry(short, flags, 0x20, cluster, len(content)))
                continue
            size = 32 * (len(content) + 2)
            cluster = self._allocate(size)
            inner = self.add(content, cluster)
            dots = [
                _dir_entry(b".          ", 0, 0x10, cluster, 0),
                _dir_entry(b"..         ", 0, 0x10, parent, 0),
            ]
            self.writes.append((self._offset(cluster), b"".join(dots + inner)))
            entries.append(_dir_entry(short, flags, 0x10, cluster, 0))
        return entries

    def write(self, tree: Tree) -> None:
        entries = b"".join(self.add(tree))
        with self.image.open("r+b") as handle:
            # After the volume label, if mkfs.vfat wrote one: the first free entry.
            handle.seek(self._offset(self.root))
            root = handle.read(self.cluster_size)
            first_free = next(i for i in range(0, len(root), 32) if root[i] in (0, 0xE5))
            if first_free + len(entries) > len(root):
                raise DemoError(f"{self.image}: the root directory is full")
            self.writes.append((self._offset(self.root) + first_free, entries))
            for offset, data in self.writes:
                handle.seek(offset)
                handle.write(data)
            for offset in self.fat_offsets:
                handle.seek(offset)
                handle.write(self.fat)
            # FSInfo: free clusters and the next free one.
            handle.seek(self.fsinfo * self.sector + 488)
            free = struct.unpack("<I", handle.read(4))[0]
            if free != 0xFFFFFFFF:
                free -= self.used
            handle.seek(self.fsinfo * self.sector + 488)
            handle.write(struct.pack("<II", free, self.next_free))
