"""Partition types: the GPT type GUIDs and MBR type bytes we name, and the OS family
each implies (None: used by every OS, or by none we restore)."""

from __future__ import annotations

from .layout import KnownFamily

ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BIOS_BOOT_GUID = "21686148-6449-6E6F-744E-656564454649"
MS_RESERVED_GUID = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
MS_BASIC_DATA_GUID = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
LINUX_FS_GUID = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
LINUX_LVM_GUID = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
LINUX_SWAP_GUID = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"

# GPT type GUID -> (name, OS family the type implies or None).
GPT_TYPES: dict[str, tuple[str, KnownFamily | None]] = {
    ESP_GUID: ("EFI system partition", None),
    BIOS_BOOT_GUID: ("BIOS boot partition", "linux"),  # only GRUB uses it
    MS_RESERVED_GUID: ("Microsoft reserved", "windows"),
    MS_BASIC_DATA_GUID: ("Microsoft basic data", "windows"),
    "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": ("Windows recovery environment", "windows"),
    "5808C8AA-7E8F-42E0-85D2-E1E90434CFB3": ("Windows LDM metadata", "windows"),
    "AF9B60A0-1431-4F62-BC68-3311714A69AD": ("Windows LDM data", "windows"),
    "E75CAF8F-F680-4CEE-AFA3-B001E56EFC2D": ("Windows storage spaces", "windows"),
    LINUX_FS_GUID: ("Linux filesystem", "linux"),
    LINUX_LVM_GUID: ("Linux LVM", "linux"),
    LINUX_SWAP_GUID: ("Linux swap", "linux"),
    "A19D880F-05FC-4D3B-A006-743F0F84911E": ("Linux RAID", "linux"),
    "CA7D7CCB-63ED-4C53-861C-1742536059CC": ("Linux LUKS", "linux"),
    "8DA63339-0007-60C0-C436-083AC8230908": ("Linux reserved", "linux"),
    "BC13C2FF-59E6-4262-A352-B275FD6F7172": ("Linux extended boot", "linux"),
    "933AC7E1-2EB4-4F13-B844-0E14E2AEF915": ("Linux /home", "linux"),
    "3B8F8425-20E0-4F3B-907F-1A25A76F98E8": ("Linux /srv", "linux"),
    "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": ("Linux root (x86-64)", "linux"),
    "44479540-F297-41B2-9AF7-D131D5F0458A": ("Linux root (x86)", "linux"),
    "B921B045-1DF0-41C3-AF44-4C6F280D3FAE": ("Linux root (ARM64)", "linux"),
    "69DAD710-2CE4-4E3C-B16C-21A1D49ABED3": ("Linux root (ARM)", "linux"),
    "6523F8AE-3EB1-4E2A-A05A-18B695AE656F": ("Linux root (Alpha)", "linux"),
    "993D8D3D-F80E-4225-855A-9DAF8ED7EA97": ("Linux root (IA-64)", "linux"),
    "60D5A7FE-8E7D-435C-B714-3DD8162144E1": ("Linux root (RISC-V 64)", "linux"),
    "516E7CB4-6ECF-11D6-8FF8-00022D09712B": ("FreeBSD data", None),
    "516E7CB5-6ECF-11D6-8FF8-00022D09712B": ("FreeBSD swap", None),
    "516E7CB6-6ECF-11D6-8FF8-00022D09712B": ("FreeBSD UFS", None),
    "516E7CBA-6ECF-11D6-8FF8-00022D09712B": ("FreeBSD ZFS", None),
    "83BD6B9D-7F41-11DC-BE0B-001560B84F0F": ("FreeBSD boot", None),
    "6A898CC3-1DD2-11B2-99A6-080020736631": ("ZFS", None),
    "48465300-0000-11AA-AA11-00306543ECAC": ("Apple HFS+", None),
}

# MBR partition type -> (name, OS family the type implies or None).
MBR_TYPES: dict[int, tuple[str, KnownFamily | None]] = {
    0x01: ("FAT12", None),
    0x04: ("FAT16 <32M", None),
    0x05: ("Extended", None),
    0x06: ("FAT16", None),
    0x07: ("HPFS/NTFS/exFAT", "windows"),
    0x0B: ("W95 FAT32", None),
    0x0C: ("W95 FAT32 (LBA)", None),
    0x0E: ("W95 FAT16 (LBA)", None),
    0x0F: ("W95 extended (LBA)", None),
    0x11: ("Hidden FAT12", None),
    0x12: ("Compaq diagnostics", None),
    0x14: ("Hidden FAT16 <32M", None),
    0x16: ("Hidden FAT16", None),
    0x17: ("Hidden HPFS/NTFS", "windows"),
    0x1B: ("Hidden W95 FAT32", None),
    0x1C: ("Hidden W95 FAT32 (LBA)", None),
    0x1E: ("Hidden W95 FAT16 (LBA)", None),
    0x27: ("Hidden NTFS WinRE", "windows"),
    0x42: ("Windows dynamic disk (LDM)", "windows"),
    0x82: ("Linux swap", "linux"),
    0x83: ("Linux", "linux"),
    0x85: ("Linux extended", None),  # a container: its logical partitions vote
    0x8E: ("Linux LVM", "linux"),
    0xA5: ("FreeBSD", None),
    0xA6: ("OpenBSD", None),
    0xA9: ("NetBSD", None),
    0xEE: ("GPT protective", None),
    0xEF: ("EFI (FAT-12/16/32)", None),
    0xFD: ("Linux raid autodetect", "linux"),
}
MBR_TYPES_BY_TEXT = {f"0x{kind:02x}": value for kind, value in MBR_TYPES.items()}
#: MBR types that hold logical partitions, and the EFI system and GPT protective types.
MBR_EXTENDED = frozenset({0x05, 0x0F, 0x85})
MBR_ESP = 0xEF
MBR_PROTECTIVE = 0xEE
