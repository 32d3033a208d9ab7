"""prepare-windows.ps1: its content (there is no Windows here, and pwsh is not in Debian).

Each setting the Azure checklist asks for is there with the right value, the hives are
unloaded in a finally, nothing secret is in it, it is plain ASCII (Windows PowerShell 5.1
reads a script without a byte order mark in the ANSI code page) and its brackets, quotes
and comments balance. With pwsh installed, PowerShell's own parser checks it too.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from azrestore.restore.scripts import (
    MAX_SCRIPT_BYTES,
    WINDOWS_SCRIPT,
    script_text,
    windows_prepare_command,
)
from tests.support.tools import needs

SCRIPT = script_text(WINDOWS_SCRIPT)


def code_only(text: str) -> str:
    """The script without comments (``# ...`` and ``<# ... #>``), strings kept."""
    return strip(text)[0]


def strip(text: str) -> tuple[str, list[str]]:
    """Walk the script like PowerShell's tokenizer does for quoting: returns the code
    without comments, and the problems found (unbalanced brackets, open strings)."""
    out: list[str] = []
    problems: list[str] = []
    stack: list[tuple[str, int]] = []
    pairs = {")": "(", "}": "{", "]": "["}
    line = 1

    def string(i: int, quote: str) -> int:
        """Index after the string opening at i (the quote); nested $( ) are code."""
        nonlocal line
        start_line = line
        j = i + 1
        while j < len(text):
            ch = text[j]
            if ch == "\n":
                line += 1
            if quote == '"' and ch == "`":
                j += 2
                continue
            if quote == '"' and text.startswith("$(", j):
                j = code(j + 2, ")")
                continue
            if ch == quote:
                if text.startswith(quote * 2, j):  # '' or "" inside the string
                    j += 2
                    continue
                return j + 1
            j += 1
        problems.append(f"string opened on line {start_line} never closes")
        return j

    def code(i: int, closer: str | None) -> int:
        """Index after the code from i up to ``closer`` (None: the end)."""
        nonlocal line
        depth: list[str] = []
        while i < len(text):
            ch = text[i]
            if ch == "\n":
                line += 1
            if text.startswith("<#", i):
                end = text.find("#>", i)
                if end < 0:
                    problems.append(f"block comment on line {line} never closes")
                    return len(text)
                line += text.count("\n", i, end)
                i = end + 2
                continue
            if ch == "#":
                end = text.find("\n", i)
                i = len(text) if end < 0 else end
                continue
            if ch in "'\"":
                start = i
                i = string(i, ch)
                out.append(text[start:i])
                continue
            if ch == "`":  # line continuation or escaped character
                out.append(text[i : i + 2])
                i += 2
                continue
            if ch in "({[":
                depth.append(ch)
                stack.append((ch, line))
            elif ch in ")}]":
                if not depth:
                    if closer == ch:
                        out.append(ch)
                        return i + 1
                    problems.append(f"unmatched {ch!r} on line {line}")
                elif depth[-1] != pairs[ch]:
                    problems.append(f"{ch!r} on line {line} closes {depth[-1]!r}")
                    depth.pop()
                else:
                    depth.pop()
                    stack.pop()
            out.append(ch)
            i += 1
        if closer is not None:
            problems.append(f"a subexpression never closes (needs {closer!r})")
        problems.extend(f"{opener!r} opened on line {at} never closes" for opener, at in stack)
        return i

    code(0, None)
    return "".join(out), problems


CODE = code_only(SCRIPT)


def test_plain_ascii_and_balanced() -> None:
    assert SCRIPT.isascii()
    assert "\t" not in SCRIPT
    _, problems = strip(SCRIPT)
    assert problems == []
    # The checker itself catches what it should.
    assert strip("function f { if ($x) { 'a' }")[1] == ["'{' opened on line 1 never closes"]
    assert strip("$a = 'open")[1] == ["string opened on line 1 never closes"]
    assert strip('"$(foo)" }')[1] == ["unmatched '}' on line 1"]
    assert strip("\"a $(b '(') c\" # (")[1] == []  # quotes and comments hide brackets


def test_windows_powershell_5_syntax_only() -> None:
    """Run Command runs Windows PowerShell 5.1: no PowerShell 7 operators."""
    for operator in ("&&", "||", "??", "?.", "-Parallel"):
        assert operator not in CODE, operator
    assert "#Requires -Version 7" not in SCRIPT


def test_parameters_match_the_run_command() -> None:
    param = re.search(r"\[CmdletBinding\(\)\]\s*param\((.*?)\)\s*\n\n", SCRIPT, re.S)
    assert param is not None
    assert re.findall(r"\[int\]\$(\w+)", param.group(1)) == ["Lun", "DiskNumber"]
    command = windows_prepare_command(2)
    assert command.command_id == "RunPowerShellScript"
    assert dict(command.parameters) == {"Lun": "2"}
    assert dict(windows_prepare_command(0, disk_number=3).parameters) == {
        "Lun": "0",
        "DiskNumber": "3",
    }
    assert command.text == SCRIPT
    assert command.to_dict()["script"] == SCRIPT.splitlines()
    assert len(SCRIPT.encode()) <= MAX_SCRIPT_BYTES
    with pytest.raises(ValueError, match="LUN must be 0-63"):
        windows_prepare_command(64)
    with pytest.raises(ValueError, match="must not be negative"):
        windows_prepare_command(1, disk_number=-1)


@pytest.mark.parametrize(
    ("key", "name", "value"),
    [
        (r"\Services\partmgr\Parameters", "SanPolicy", "1"),  # OnlineAll
        (r"\Control\TimeZoneInformation", "RealTimeIsUniversal", "1"),
        (r"\Control\Terminal Server", "fDenyTSConnections", "0"),
        (r"\Control\Terminal Server\WinStations\RDP-Tcp", "PortNumber", "3389"),
    ],
)
def test_registry_settings(key: str, name: str, value: str) -> None:
    """Set as DWORDs in the restored system's current control set (not the helper's)."""
    pattern = rf"Set-RegValue \"\$cs{re.escape(key)}\" '{name}' {value} 'DWord'"
    assert re.search(pattern, CODE), pattern


def test_the_control_set_is_the_offline_hive_s_current_one() -> None:
    assert '$cs = "$system\\$controlSetName"' in CODE
    assert "'ControlSet{0:D3}' -f [int]$current" in CODE
    assert "Get-RegValue \"$system\\Select\" 'Current'" in CODE
    assert '$system = "Registry::HKEY_LOCAL_MACHINE\\$SystemHive"' in CODE
    # The helper's own CurrentControlSet is only read (to copy the agent from).
    for line in CODE.splitlines():
        if "HKLM:\\SYSTEM\\CurrentControlSet" in line or "HKLM\\SYSTEM\\CurrentControlSet" in line:
            assert "Set-" not in line and "New-Item" not in line, line


def test_rdp_stays_reachable() -> None:
    assert "'Start' 3 'DWord'" in CODE and "TermService" in CODE  # not disabled
    assert "Policies\\Microsoft\\Windows NT\\Terminal Services" in CODE


def test_firewall_rules_for_rdp_and_winrm() -> None:
    assert "SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules" in CODE
    assert "'^RemoteDesktop-(UserMode-)?In-(TCP|UDP)$'" in CODE
    assert "'^WINRM-HTTP-In-TCP(-PUBLIC|-NoScope)?$'" in CODE
    assert "-replace '\\|Active=FALSE\\|', '|Active=TRUE|'" in CODE
    names = [
        "RemoteDesktop-UserMode-In-TCP",
        "RemoteDesktop-UserMode-In-UDP",
        "WINRM-HTTP-In-TCP",
        "WINRM-HTTP-In-TCP-PUBLIC",
    ]
    for name in names:
        assert re.match(r"^RemoteDesktop-(UserMode-)?In-(TCP|UDP)$", name) or re.match(
            r"^WINRM-HTTP-In-TCP(-PUBLIC|-NoScope)?$", name
        )
    assert not re.match(r"^RemoteDesktop-(UserMode-)?In-(TCP|UDP)$", "RemoteDesktop-Shadow-In-TCP")


def test_the_agent_is_installed_offline_from_the_helper() -> None:
    assert "'GuestAgent_*'" in CODE and "Copy-Item -LiteralPath $source.FullName" in CODE
    assert "foreach ($service in 'RdAgent', 'WindowsAzureGuestAgent')" in CODE
    assert "@('export', \"HKLM\\SYSTEM\\CurrentControlSet\\Services\\$service\"" in CODE
    assert "@('import', $file)" in CODE
    assert "[HKEY_LOCAL_MACHINE\\$SystemHive\\$ControlSetName\\" in CODE
    # Skipped when the agent is there already.
    assert 'Test-Path -LiteralPath "$ControlSet\\Services\\WindowsAzureGuestAgent"' in CODE


def test_boot_configuration() -> None:
    assert "@('/store', $Store, '/set', '{default}', $setting[0], $setting[1])" in CODE
    assert "@(@('recoveryenabled', 'No'), @('bootstatuspolicy', 'IgnoreAllFailures'))" in CODE
    # The store on the restored disk's system partition: the ESP (GPT) or the active one (MBR).
    assert "'EFI\\Microsoft\\Boot\\BCD', 'Boot\\BCD'" in CODE
    assert "$EspGuid = '{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}'" in CODE
    assert "$partition.IsActive" in CODE


def test_disk_online_then_offline_hives_unloaded_in_finally() -> None:
    main = CODE[CODE.index("$failure = ''") :]
    body, rest = main.split("} catch {", 1)
    _, final = rest.split("} finally {", 1)
    assert "Set-Disk -Number $Target.Number -IsOffline $false" in CODE  # brought online
    assert "Mount-Hive $SystemHive" in body and "Mount-Hive $SoftwareHive" in body
    assert "Dismount-Hives" not in body  # only in finally
    assert (
        final.index("Dismount-Hives")
        < final.index("Remove-PartitionAccessPath")
        < final.index("Set-Disk -Number $script:Disk.Number -IsOffline $true")
    )
    assert "reg.exe' @('unload'" in CODE and "[GC]::Collect()" in CODE
    # A hive left loaded by an interrupted run is unloaded before loading again.
    assert CODE.count("@('unload', \"HKLM\\$Name\")") == 1


def test_result_line() -> None:
    assert 'Say "AZRESTORE-RESULT $json"' in CODE
    assert "ConvertTo-Json -Compress" in CODE and "$json.Length -le 3800" in CODE
    tail = CODE[CODE.index("} finally {") :]
    assert tail.index("Dismount-Hives") < tail.index("Write-Result")  # the last line printed
    assert "if ($failure) { exit 1 }" in CODE


def test_no_secrets() -> None:
    lowered = SCRIPT.lower()
    for word in (
        "password",
        "accountkey",
        "sharedaccesssignature",
        "sig=",
        "bearer",
        "-----begin",
        "secret",
    ):
        assert word not in lowered, word
    assert not re.search(r"[A-Za-z0-9+/]{40,}={0,2}", SCRIPT)  # no long base64 blobs
    assert not re.search(
        r"https?://(?!go\.microsoft\.com/fwlink/)", SCRIPT
    )  # no download of anything


def test_documents_itself() -> None:
    head = SCRIPT[: SCRIPT.index("#>")]
    for word in (
        "SanPolicy",
        "RealTimeIsUniversal",
        "fDenyTSConnections",
        "3389",
        "WinRM",
        "SetupComplete.cmd",
        "AZRESTORE-RESULT",
    ):
        assert word in head, word


@needs("pwsh")
def test_powershell_parses_it(tmp_path: Path) -> None:
    path = tmp_path / WINDOWS_SCRIPT
    path.write_text(SCRIPT)
    check = (
        "$errors = $null; [void][System.Management.Automation.Language.Parser]::ParseFile("
        f"'{path}', [ref]$null, [ref]$errors); $errors | ForEach-Object {{ $_.ToString() }};"
        " exit $errors.Count"
    )
    done = subprocess.run(
        ["pwsh", "-NoProfile", "-Command", check], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
