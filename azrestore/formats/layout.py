"""What a partition analysis finds: the partitions and the disk's layout, and how the
readers of partition tables read the disk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

#: ``read(offset, length) -> bytes``, short at the end of the disk.
Reader = Callable[[int, int], bytes]
Scheme = Literal["gpt", "mbr", "none"]
Firmware = Literal["uefi", "bios", "unknown"]
OsFamily = Literal["windows", "linux", "unknown"]
#: An OS family a file system or partition type points to.
KnownFamily = Literal["windows", "linux"]
Generation = Literal["V1", "V2"]


def read_padded(read: Reader, offset: int, length: int) -> bytes:
    """``read`` padded with zeros to ``length`` (the disk reads as zeros past its end)."""
    data = bytes(read(offset, length)) if length > 0 else b""
    return data.ljust(length, b"\x00")[:length]


@dataclass(frozen=True)
class Partition:
    """One partition. ``start`` and ``size`` are in bytes; ``type`` is the GPT type GUID
    (upper case) or the MBR type as ``0x83``; ``name`` is the GPT label; ``bootable`` the
    MBR active flag or the GPT legacy-BIOS-bootable attribute."""

    number: int
    start: int
    size: int
    type: str
    type_name: str
    name: str = ""
    bootable: bool = False
    filesystem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "start": self.start,
            "size": self.size,
            "type": self.type,
            "type_name": self.type_name,
            "name": self.name,
            "bootable": self.bootable,
            "filesystem": self.filesystem,
        }


@dataclass(frozen=True)
class DiskLayout:
    """What a disk's partition table says (see :mod:`azrestore.formats.partitions` for
    the rules).

    ``filesystem`` is a file system found on the whole disk when it has no partition
    table; ``warnings`` lists anything odd (bad checksums, partitions past the end).
    """

    scheme: Scheme
    partitions: tuple[Partition, ...]
    firmware: Firmware
    os_family: OsFamily
    generation: Generation | None
    filesystem: str | None = None
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "partitions": [p.to_json() for p in self.partitions],
            "firmware": self.firmware,
            "os_family": self.os_family,
            "generation": self.generation,
            "filesystem": self.filesystem,
            "warnings": list(self.warnings),
        }
