"""The emulated firmware's secure boot: does the OS disk's EFI system partition hold a
signed first-stage loader, which a VM with secure boot on needs to start at all.

Written from the rule, not from azrestore's code (the restore must not judge itself): a
new VM has no boot entries, so UEFI starts ``\\EFI\\BOOT\\BOOTX64.EFI`` (found by its 8.3
name, as every FAT directory has one); that file and any other ``.EFI`` beside it (what
shim hands over to) must carry an Authenticode signature: a security directory in the PE
optional header pointing to a WIN_CERTIFICATE of type PKCS_SIGNED_DATA (2). Only that a
signature is there is checked, not Microsoft's chain (which tests cannot sign with).
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from typing import Final

__all__ = ["secure_boot_failure"]

#: ``read(offset, length)`` of the disk (the blob without its footer).
Read = Callable[[int, int], Awaitable[bytes]]
_ESP_TYPE: Final = bytes.fromhex("28732ac11ff8d211ba4b00a0c93ec93b")
_MAX_LOADER: Final = 64 * 1024 * 1024
_MAX_CHAIN: Final = 1 << 16


class _NoBoot(Exception):
    """Why the firmware did not start anything."""


async def _esp(read: Read, size: int) -> tuple[int, int]:
    header = await read(512, 92)
    if header[:8] != b"EFI PART":
        raise _NoBoot("the OS disk has no GPT, so no EFI system partition")
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    if not 128 <= entry_size <= 4096 or count > 1024:
        raise _NoBoot("the OS disk's GPT header is damaged")
    table = await read(entries_lba * 512, count * entry_size)
    for at in range(0, len(table) - entry_size + 1, entry_size):
        if table[at : at + 16] == _ESP_TYPE:
            first, last = struct.unpack_from("<QQ", table, at + 32)
            if first * 512 < size:
                return first * 512, min(last + 1, size // 512) * 512 - first * 512
    raise _NoBoot("the OS disk has no EFI system partition")


class _Fat:
    def __init__(self, read: Read, start: int, boot: bytes) -> None:
        self.read, self.start = read, start
        (self.bps,) = struct.unpack_from("<H", boot, 11)
        self.spc = boot[13]
        (reserved,) = struct.unpack_from("<H", boot, 14)
        fats = boot[16]
        (root_entries,) = struct.unpack_from("<H", boot, 17)
        total = struct.unpack_from("<H", boot, 19)[0] or struct.unpack_from("<I", boot, 32)[0]
        fat_size = struct.unpack_from("<H", boot, 22)[0] or struct.unpack_from("<I", boot, 36)[0]
        if boot[510:512] != b"\x55\xaa" or self.bps < 512 or not self.spc or not fat_size:
            raise _NoBoot("the EFI system partition holds no FAT file system")
        self.fat = reserved * self.bps
        self.root = (reserved + fats * fat_size) * self.bps
        root_bytes = -(-root_entries * 32 // self.bps) * self.bps
        self.data = self.root + root_bytes
        clusters = (total * self.bps - self.data) // (self.spc * self.bps)
        self.bits = 12 if clusters < 4085 else 16 if clusters < 65525 else 32
        self.root_bytes = root_bytes
        self.root_cluster = struct.unpack_from("<I", boot, 44)[0] if self.bits == 32 else 0

    async def _next(self, cluster: int) -> int | None:
        if self.bits == 12:
            raw = await self.read(self.start + self.fat + cluster * 3 // 2, 2)
            value = struct.unpack("<H", raw)[0]
            value = value >> 4 if cluster % 2 else value & 0xFFF
            return None if value >= 0xFF8 else value
        width = self.bits // 8
        raw = await self.read(self.start + self.fat + cluster * width, width)
        value = int.from_bytes(raw, "little") & 0x0FFFFFFF
        return None if value >= (0xFFF8 if self.bits == 16 else 0x0FFFFFF8) else value

    async def _clusters(self, first: int, most: int) -> bytes:
        out = bytearray()
        cluster: int | None = first
        size = self.spc * self.bps
        for _ in range(min(most, _MAX_CHAIN)):
            if cluster is None or cluster < 2:
                break
            out += await self.read(self.start + self.data + (cluster - 2) * size, size)
            cluster = await self._next(cluster)
        return bytes(out)

    async def directory(self, cluster: int) -> dict[bytes, tuple[int, int, bool]]:
        if cluster == 0 and self.bits != 32:
            raw = await self.read(self.start + self.root, self.root_bytes)
        else:
            raw = await self._clusters(cluster or self.root_cluster, 256)
        found: dict[bytes, tuple[int, int, bool]] = {}
        for at in range(0, len(raw) - 31, 32):
            entry = raw[at : at + 32]
            if entry[0] == 0:
                break
            if entry[0] == 0xE5 or entry[11] & 0x0F == 0x0F or entry[11] & 0x08:
                continue
            high = struct.unpack_from("<H", entry, 20)[0] if self.bits == 32 else 0
            first = high << 16 | struct.unpack_from("<H", entry, 26)[0]
            found[entry[:11].upper()] = (
                first,
                struct.unpack_from("<I", entry, 28)[0],
                bool(entry[11] & 0x10),
            )

        return found

    async def file(self, first: int, size: int) -> bytes:
        cluster_size = self.spc * self.bps
        return (await self._clusters(first, -(-size // cluster_size)))[:size]


def _signed(image: bytes) -> str | None:
    """None for a signed PE image, else what is wrong with it."""
    if image[:2] != b"MZ" or len(image) < 64:
        return "is not a PE image"
    pe = struct.unpack_from("<I", image, 60)[0]
    if image[pe : pe + 4] != b"PE\0\0":
        return "is not a PE image"
    optional = pe + 24
    magic = struct.unpack_from("<H", image, optional)[0] if len(image) > optional + 2 else 0
    directories = {0x10B: 96, 0x20B: 112}.get(magic)
    if directories is None:
        return "is not a PE image"
    number = struct.unpack_from("<I", image, optional + directories - 4)[0]
    if number < 5:
        return "carries no Authenticode signature"
    where, length = struct.unpack_from("<II", image, optional + directories + 4 * 8)
    if length < 8 or where + length > len(image):
        return "carries no Authenticode signature"
    cert_type = struct.unpack_from("<H", image, where + 6)[0]
    if cert_type != 2:
        return f"carries a certificate of type {cert_type}, not an Authenticode signature"
    return None


async def secure_boot_failure(read: Read, size: int) -> str | None:
    """None when the firmware would start the disk with secure boot on; else why not."""
    try:
        start, _ = await _esp(read, size)
        fat = _Fat(read, start, await read(start, 512))
        directory = await fat.directory(0)
        for name in (b"EFI        ", b"BOOT       "):
            entry = directory.get(name)
            if entry is None or not entry[2]:
                raise _NoBoot(
                    "no \\EFI\\BOOT\\BOOTX64.EFI on the EFI system partition: nothing to boot"
                )
            directory = await fat.directory(entry[0])
        if b"BOOTX64 EFI" not in directory:
            raise _NoBoot(
                "no \\EFI\\BOOT\\BOOTX64.EFI on the EFI system partition: nothing to boot"
            )
        for name, (first, file_size, is_dir) in sorted(directory.items()):
            if is_dir or name[8:] != b"EFI":
                continue
            shown = f"\\EFI\\BOOT\\{name[:8].decode('latin-1').strip()}.EFI"
            if file_size > _MAX_LOADER:
                raise _NoBoot(f"{shown} is too large to be a boot loader")
            problem = _signed(await fat.file(first, file_size))
            if problem is not None:
                raise _NoBoot(f"{shown} {problem}; secure boot refused to start it")
    except _NoBoot as exc:
        return str(exc)
    except (struct.error, IndexError, ValueError):
        return "the EFI system partition is damaged; secure boot found no loader to start"
    return None
