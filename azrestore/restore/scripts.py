"""The disk preparation scripts, and the Azure Run Command inputs that run them on a helper.

The scripts ship as package data (``azrestore/restore/scripts/``). Each runs on a helper VM
to which the restored VM's disks are attached as data disks, finds the OS disk by its LUN,
makes the changes Azure needs (see the scripts' headers), and prints, as its last line,
``AZRESTORE-RESULT {json}`` (read it with :func:`parse_result`).

Run Command limits that matter here (action Run Command, ``virtualMachines/runCommand``):
only the last 4096 bytes of output come back (the result line is kept under 3800 bytes),
a script runs at most 90 minutes, one at a time per VM. Azure documents no size limit for
an inline script; :data:`MAX_SCRIPT_BYTES` is a conservative budget the scripts are kept
under (and checked against, here and in the tests).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Literal, NamedTuple

__all__ = [
    "LINUX_SCRIPT",
    "MAX_SCRIPT_BYTES",
    "RESULT_PREFIX",
    "WINDOWS_OFFLINE_SCRIPT",
    "WINDOWS_SCRIPT",
    "RunCommandParameter",
    "RunCommandSpec",
    "linux_prepare_command",
    "parse_result",
    "script_text",
    "windows_offline_command",
    "windows_prepare_command",
]

LINUX_SCRIPT = "prepare-linux.sh"
WINDOWS_SCRIPT = "prepare-windows.ps1"
#: Windows disks prepared offline from a Linux helper (ntfs-3g and hivex, as virt-v2v does).
WINDOWS_OFFLINE_SCRIPT = "prepare-windows-offline.sh"
#: Budget for one script's text, in bytes (not an Azure figure: see the module docstring).
MAX_SCRIPT_BYTES = 32 * 1024
#: How the scripts' last output line starts.
RESULT_PREFIX = "AZRESTORE-RESULT "
#: Data disks attach at LUN 0-63.
_MAX_LUN = 63


class RunCommandParameter(NamedTuple):
    """One ``{"name": ..., "value": ...}`` of a Run Command (a pair, so that
    ``dict(spec.parameters)`` maps names to values)."""

    name: str
    value: str


@dataclass(frozen=True)
class RunCommandSpec:
    """What azure-mgmt-compute's ``RunCommandInput`` takes: ``command_id``, ``script``
    (lines) and ``parameters``; :meth:`to_dict` gives the REST body."""

    command_id: Literal["RunShellScript", "RunPowerShellScript"]
    script: tuple[str, ...]
    parameters: tuple[RunCommandParameter, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "commandId": self.command_id,
            "script": list(self.script),
            "parameters": [{"name": p.name, "value": p.value} for p in self.parameters],
        }

    @property
    def text(self) -> str:
        """The script as one text (the lines Run Command joins again)."""
        return "\n".join(self.script) + "\n"


@cache
def script_text(name: str) -> str:
    """A preparation script's text, from the package data. Raises RuntimeError if it is
    over :data:`MAX_SCRIPT_BYTES` (a packaging mistake, caught by the tests)."""
    if name not in (LINUX_SCRIPT, WINDOWS_SCRIPT, WINDOWS_OFFLINE_SCRIPT):
        raise ValueError(f"no such script: {name!r}")
    text = files("azrestore.restore").joinpath("scripts", name).read_text(encoding="utf-8")
    size = len(text.encode("utf-8"))
    if size > MAX_SCRIPT_BYTES:
        raise RuntimeError(f"{name} is {size} bytes, over the {MAX_SCRIPT_BYTES} budget")
    return text


def _check_lun(lun: int) -> None:
    if isinstance(lun, bool) or not 0 <= lun <= _MAX_LUN:
        raise ValueError(f"LUN must be 0-{_MAX_LUN}, not {lun!r}")


def linux_prepare_command(lun: int) -> RunCommandSpec:
    """Run ``prepare-linux.sh`` on a Linux helper for the restored OS disk at ``lun``.

    The LUN goes as one named parameter, ``AZRESTORE_LUN``: RunShellScript gives named
    parameters to the script as environment variables and unnamed ones as arguments; the
    script reads either (a bare number argument is the LUN).
    """
    _check_lun(lun)
    return RunCommandSpec(
        command_id="RunShellScript",
        script=tuple(script_text(LINUX_SCRIPT).splitlines()),
        parameters=(RunCommandParameter("AZRESTORE_LUN", str(lun)),),
    )


def windows_prepare_command(lun: int, *, disk_number: int | None = None) -> RunCommandSpec:
    """Run ``prepare-windows.ps1`` on a Windows helper for the restored OS disk at ``lun``
    (or at ``disk_number``, Windows' number for it, when known). RunPowerShellScript
    passes named parameters to the script's ``param()`` block."""
    _check_lun(lun)
    parameters = [RunCommandParameter("Lun", str(lun))]
    if disk_number is not None:
        if disk_number < 0:
            raise ValueError(f"disk number must not be negative, not {disk_number}")
        parameters.append(RunCommandParameter("DiskNumber", str(disk_number)))
    return RunCommandSpec(
        command_id="RunPowerShellScript",
        script=tuple(script_text(WINDOWS_SCRIPT).splitlines()),
        parameters=tuple(parameters),
    )


def windows_offline_command(lun: int) -> RunCommandSpec:
    """Run ``prepare-windows-offline.sh`` on a Linux helper for the restored Windows OS disk
    at ``lun``: its registry hives and boot configuration edited offline, the Azure VM agent
    installed at first boot. Same conventions as :func:`linux_prepare_command` (one named
    parameter, ``AZRESTORE_LUN``). The helper needs ntfs-3g and hivexsh (libhivex-bin)."""
    _check_lun(lun)
    return RunCommandSpec(
        command_id="RunShellScript",
        script=tuple(script_text(WINDOWS_OFFLINE_SCRIPT).splitlines()),
        parameters=(RunCommandParameter("AZRESTORE_LUN", str(lun)),),
    )


def parse_result(output: str) -> dict[str, Any] | None:
    """The JSON of the last ``AZRESTORE-RESULT`` line in a script's output (Run Command's
    stdout), or None when there is none (the script did not get that far, or the output
    was cut)."""
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_PREFIX):
            try:
                value = json.loads(line[len(RESULT_PREFIX) :])
            except json.JSONDecodeError:
                return None
            return value if isinstance(value, dict) else None
    return None
