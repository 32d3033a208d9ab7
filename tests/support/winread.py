"""Reading a prepared Windows disk back with independent tools: ntfs-3g (read-only) and
hivexget, never azrestore's code."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tests.support.guestimages import partition
from tests.support.windisk import hivexget, mounted

_FOOTER = 512
_CS = "\\ControlSet001"
_TS = f"{_CS}\\Control\\Terminal Server"
_RULES = f"{_CS}\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules"
_STARTUP = "\\Microsoft\\Windows\\CurrentVersion\\Group Policy\\Scripts\\Startup\\0\\0"
FIRST_BOOT_CMDLINE = "C:\\ProgramData\\AzRestore\\FirstBoot\\install-agent.cmd"


def examine_prepared(data: bytes, work: Path) -> dict[str, str]:
    """What ntfs-3g (read-only) and hivexget find on a restored disk's first (NTFS)
    partition: ``data`` is the disk's blob, its VHD footer last."""
    image = work / "read-back.raw"
    image.write_bytes(data[:-_FOOTER])
    volume = partition(image, 1, work / "read-back.ntfs")
    found: dict[str, str] = {}
    with mounted(volume, "ntfs", read_only=True) as root:
        config = root / "Windows/System32/config"
        system, software = config / "SYSTEM", config / "SOFTWARE"
        wanted: Mapping[str, tuple[Path, str, str]] = {
            "fDenyTSConnections": (system, _TS, "fDenyTSConnections"),
            "PortNumber": (
                system,
                f"{_TS}\\WinStations\\RDP-Tcp",
                "PortNumber",
            ),
            "SanPolicy": (system, f"{_CS}\\Services\\partmgr\\Parameters", "SanPolicy"),
            "RealTimeIsUniversal": (
                system,
                f"{_CS}\\Control\\TimeZoneInformation",
                "RealTimeIsUniversal",
            ),
            "rdp-tcp": (system, _RULES, "RemoteDesktop-UserMode-In-TCP"),
            "rdp-udp": (system, _RULES, "RemoteDesktop-UserMode-In-UDP"),
            "winrm": (system, _RULES, "WINRM-HTTP-In-TCP"),
            "policy": (
                software,
                "\\Policies\\Microsoft\\Windows NT\\Terminal Services",
                "fDenyTSConnections",
            ),
            "startup": (software, _STARTUP, "Script"),
        }
        for what, (hive, key, name) in wanted.items():
            found[what] = hivexget(hive, key, name)
        installer = root / "ProgramData/AzRestore/FirstBoot/install-agent.cmd"
        found["installer"] = installer.read_bytes().decode("ascii", "replace")
    return found
