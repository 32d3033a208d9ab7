"""The UEFI boot chain of an OS disk: the loaders on its EFI system partition (read with
:mod:`.fat`) and whether each is Authenticode-signed (:mod:`.pe_signature`), which decides
whether the disk can boot with secure boot on.

Pure. A new Azure VM has no boot entries of its own, so its firmware starts the removable
media path ``\\EFI\\BOOT\\BOOTX64.EFI``; that loader must be signed, and so must the loaders
it hands over to that sit beside the known ones (shim's ``grubx64.efi``, Windows'
``bootmgfw.efi``). The chain is signed when the first stage is and every other known loader
found is too; unknown when there is no EFI system partition or no first stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .fat import FatError, FatVolume
from .layout import Partition, Reader
from .partition_types import ESP_GUID, MBR_ESP
from .pe_signature import pe_signature

#: The loader UEFI firmware starts without boot entries (x64).
FIRST_STAGE = "EFI/BOOT/BOOTX64.EFI"
#: Loaders looked for under each ``EFI/<vendor>`` directory.
KNOWN_LOADERS = ("shimx64.efi", "grubx64.efi", "bootmgfw.efi", "mmx64.efi", "fbx64.efi")
#: Loaders read at most (a shim or a boot manager is 1-3 MiB).
MAX_LOADER = 64 * 1024 * 1024
#: Vendor directories looked into at most.
MAX_VENDORS = 64


@dataclass(frozen=True, slots=True)
class Loader:
    """One loader found: where, its size, whether it is signed, and in words what it is."""

    path: str
    size: int
    signed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "signed": self.signed, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class BootChain:
    """What the EFI system partition holds. ``signed`` is None when it cannot be told
    (no ESP, an unreadable one, no first-stage loader); ``summary`` says what was found."""

    esp: bool
    loaders: tuple[Loader, ...]
    signed: bool | None
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {
            "esp": self.esp,
            "signed": self.signed,
            "summary": self.summary,
            "loaders": [loader.to_json() for loader in self.loaders],
        }


def _esp(partitions: Sequence[Partition]) -> Partition | None:
    return next(
        (p for p in partitions if p.type in (ESP_GUID, f"0x{MBR_ESP:02x}")),
        None,
    )


def _loader(volume: FatVolume, path: str) -> Loader | None:
    entry = volume.find(path)
    if entry is None or entry.is_dir:
        return None
    shown = "\\" + path.replace("/", "\\")
    try:
        found = pe_signature(volume.read_file(entry, MAX_LOADER))
    except FatError as exc:
        return Loader(shown, entry.size, False, f"unreadable ({exc})")
    return Loader(shown, entry.size, found.signed, found.detail)


def read_boot_chain(read: Reader, disk_size: int, partitions: Sequence[Partition]) -> BootChain:
    """The loaders on the disk's EFI system partition and whether the chain is signed."""
    esp = _esp(partitions)
    if esp is None:
        return BootChain(False, (), None, "no EFI system partition")
    try:
        volume = FatVolume.open(read, esp.start, min(esp.size, max(0, disk_size - esp.start)))
        first = _loader(volume, FIRST_STAGE)
        others: list[Loader] = []
        efi = volume.find("EFI")
        vendors = volume.list_dir(efi.cluster) if efi is not None and efi.is_dir else []
        for vendor in [v for v in vendors if v.is_dir][:MAX_VENDORS]:
            for name in KNOWN_LOADERS:
                found = _loader(volume, f"EFI/{vendor.name}/{name}")
                if found is not None and (
                    first is None or found.path.lower() != first.path.lower()
                ):
                    others.append(found)
    except FatError as exc:
        return BootChain(True, (), None, f"EFI system partition unreadable: {exc}")
    loaders = tuple([first] if first else []) + tuple(others)
    if first is None:
        names = ", ".join(loader.path for loader in others) or "no loader"
        return BootChain(True, loaders, None, f"no \\EFI\\BOOT\\BOOTX64.EFI ({names})")
    unsigned = [loader.path for loader in loaders if not loader.signed]
    if unsigned:
        return BootChain(True, loaders, False, f"unsigned: {', '.join(unsigned)}")
    return BootChain(True, loaders, True, f"signed: {', '.join(loader.path for loader in loaders)}")
