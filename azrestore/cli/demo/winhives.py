"""Registry hives for a sample Windows volume: SYSTEM, SOFTWARE and a BCD store as a
Windows install has them before it is prepared for Azure (RDP off on port 3390, its
firewall rule inactive, SAN policy offline-shared, local-time clock), made with hivexsh
from hivex's own minimal hive (``data/hivex-minimal.hive``, LGPL-2.1-or-later; see
``data/README.md``), since hivex cannot create an empty hive. The demo's Windows disk
holds them, and so do the tests'.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from .tools import DemoError

MINIMAL_HIVE = Path(__file__).parent / "data" / "hivex-minimal.hive"
#: Values in hivexsh's setval syntax, by key path (backslashes, from the hive's root).
Keys = Mapping[str, Mapping[str, str]]

BOOTMGR = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"
LOADER = "{4b3b1a6e-5b7c-11ee-8c99-0242ac120002}"
RULES = "ControlSet001\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules"
APP = "%SystemRoot%\\system32\\svchost.exe"
RDP_TCP_OFF = (
    f"v2.30|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=3389|App={APP}|Svc=termservice"
    "|Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|"
)
OTHER_RULE = (
    "v2.30|Action=Allow|Active=FALSE|Dir=In|Protocol=1|ICMP4=8:*|Name=File and Printer Sharing"
    " (Echo Request - ICMPv4-In)|"
)


def hive(path: Path, keys: Keys) -> Path:
    """A hive at ``path``: the minimal one, with ``keys`` added (parents first)."""
    shutil.copyfile(MINIMAL_HIVE, path)
    made: set[str] = set()
    commands: list[str] = []
    for key, values in keys.items():
        parts = key.split("\\")
        for depth in range(len(parts)):
            sub = "\\".join(parts[: depth + 1])
            if sub.lower() in made:
                continue
            parent = "\\".join(parts[:depth])
            commands += [f"cd \\{parent}" if parent else "cd \\ ", f"add {parts[depth]}"]
            made.add(sub.lower())
        if values:
            setval = [f"cd \\{key}", f"setval {len(values)}"]
            for name, value in values.items():
                setval += [name or "@", value]
            commands += setval
    hivexsh(path, [*commands, "commit"])
    return path


def hivexsh(path: Path, commands: list[str]) -> None:
    """hivexsh -w running ``commands`` on ``path`` (lines of at most 8191 bytes)."""
    try:
        done = subprocess.run(
            ["hivexsh", "-w", str(path)],
            input="\n".join(commands) + "\n",
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except FileNotFoundError:
        raise DemoError("hivexsh not found (run `make install`: libhivex-bin)") from None
    if done.returncode != 0:
        raise DemoError(f"hivexsh -w {path} failed: {done.stderr.strip()}")


def system_keys() -> dict[str, dict[str, str]]:
    """A SYSTEM hive's keys as a Windows install has them, before preparation."""
    cs = "ControlSet001"
    return {
        "Select": {"Current": "dword:1", "Default": "dword:1", "LastKnownGood": "dword:2"},
        f"{cs}\\Control\\ComputerName\\ComputerName": {"ComputerName": "string:WIN-RESTORED"},
        f"{cs}\\Control\\Terminal Server": {
            "fDenyTSConnections": "dword:1",
            "ProductVersion": "string:5.1",
            # A multi-string, kept byte for byte: CertPropSvc, SessionEnv.
            "RCDependentServices": "hex:7:"
            + ",".join(f"{b:02x}" for b in "CertPropSvc\0SessionEnv\0\0".encode("utf-16-le")),
        },
        f"{cs}\\Control\\Terminal Server\\WinStations\\RDP-Tcp": {
            "PortNumber": "dword:3390",
            "WdName": "string:Microsoft RDP 8.0",
            "SecurityLayer": "dword:2",
            "UserAuthentication": "dword:1",
        },
        f"{cs}\\Control\\TimeZoneInformation": {
            "Bias": "dword:0xffffffc4",
            # Not ASCII: re-encoded exactly when the key is written again.
            "StandardName": "hex:1:"
            + ",".join(f"{b:02x}" for b in "Mitteleuropäische Zeit\0".encode("utf-16-le")),
            "TimeZoneKeyName": "string:W. Europe Standard Time",
        },
        f"{cs}\\Services\\partmgr\\Parameters": {"SanPolicy": "dword:3"},
        f"{cs}\\Services\\TermService": {
            "Start": "dword:4",
            "ImagePath": "expandstring:%SystemRoot%\\System32\\svchost.exe -k NetworkService",
        },
        f"{cs}\\Services\\BFE": {"Start": "dword:2"},
        f"{cs}\\Services\\Dhcp": {"Start": "dword:2"},
        f"{cs}\\Services\\IKEEXT": {"Start": "dword:3"},
        f"{cs}\\Services\\mpssvc": {"Start": "dword:4"},
        f"{cs}\\Services\\W32Time": {"Start": "dword:3"},
        RULES: {
            "RemoteDesktop-UserMode-In-TCP": f"string:{RDP_TCP_OFF}",
            "FPS-ICMP4-ERQ-In": f"string:{OTHER_RULE}",
        },
    }


def software_keys() -> dict[str, dict[str, str]]:
    """A SOFTWARE hive's keys: the product, and RDP denied by policy."""
    return {
        "Microsoft\\Windows NT\\CurrentVersion": {
            "ProductName": "string:Windows Server 2019 Datacenter",
            "CurrentBuild": "string:17763",
            "SystemRoot": "string:C:\\Windows",
        },
        "Policies\\Microsoft\\Windows NT\\Terminal Services": {"fDenyTSConnections": "dword:1"},
    }


def bcd_keys() -> dict[str, dict[str, str]]:
    """A BCD store's keys: the boot manager pointing at one Windows loader."""
    return {
        f"Objects\\{BOOTMGR}\\Elements\\23000003": {"Element": f"string:{LOADER}"},
        f"Objects\\{LOADER}\\Elements\\12000004": {"Element": "string:Windows Server"},
        f"Objects\\{LOADER}\\Elements\\16000009": {"Element": "hex:3:01"},
    }
