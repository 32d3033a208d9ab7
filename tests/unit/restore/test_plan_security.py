"""Each VM's security choice (restore/plan/security.py): auto, forced Trusted Launch and
Standard, secure boot against the boot chain, and the refusals naming the VM and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from azrestore.formats.boot_chain import BootChain
from azrestore.restore.plan import parse_plan
from azrestore.restore.plan.security import decide_security
from tests.support.plans import base

SIGNED = BootChain(True, (), True, "signed: \\EFI\\BOOT\\BOOTX64.EFI")
UNSIGNED = BootChain(True, (), False, "unsigned: \\EFI\\BOOT\\BOOTX64.EFI")
UNKNOWN = BootChain(False, (), None, "no EFI system partition")


def _decide(generation: str, chain: BootChain, target: dict[str, Any] | None = None, **vm: Any):  # type: ignore[no-untyped-def]
    data = base()
    data["vms"][0].update(vm)
    data["target"].update(target or {})
    plan = parse_plan(yaml.safe_dump(data), base_dir=Path("/backups"))
    problems: list[str] = []
    choice = decide_security(plan, ("vms", 0), plan.vms[0], generation, chain, problems)  # type: ignore[arg-type]
    return choice, problems


def test_auto() -> None:
    choice, _ = _decide("V2", SIGNED)
    assert choice is not None and choice.describe() == "Trusted Launch (secure boot on, vTPM on)"
    choice, _ = _decide("V2", UNSIGNED)
    assert choice is not None and choice.describe() == "Trusted Launch (secure boot off, vTPM on)"
    assert "secure boot is off" in choice.reason
    choice, _ = _decide("V1", SIGNED)
    assert choice is not None and choice.describe() == "Standard" and "V1" in choice.reason
    choice, _ = _decide("V2", SIGNED, size="Standard_A4_v2")
    assert choice is not None and not choice.trusted_launch


@pytest.mark.parametrize(
    ("generation", "chain", "fields", "where"),
    [
        ("V1", SIGNED, {"security": "trusted_launch"}, "vms[0].security"),
        ("V2", SIGNED, {"security": "TrustedLaunch", "size": "Basic_A1"}, "vms[0].security"),
        ("V2", UNSIGNED, {"secure_boot": True}, "vms[0].secure_boot"),
        ("V2", UNKNOWN, {"secure_boot": True}, "vms[0].secure_boot"),
        ("V1", UNKNOWN, {"vtpm": True}, "vms[0].vtpm"),
        ("V2", SIGNED, {"security": "standard", "secure_boot": True}, "vms[0].secure_boot"),
    ],
)
def test_refusals_name_the_vm_and_field(
    generation: str, chain: BootChain, fields: dict[str, Any], where: str
) -> None:
    choice, problems = _decide(generation, chain, **fields)
    assert choice is None and len(problems) == 1, problems
    assert f"{where}: VM web01: " in problems[0], problems[0]


def test_run_wide_default_and_overrides() -> None:
    choice, problems = _decide("V2", SIGNED, {"security": "standard"})
    assert choice is not None and choice.describe() == "Standard", problems
    choice, _ = _decide("V2", SIGNED, {"security": "standard"}, security="auto")
    assert choice is not None and choice.trusted_launch
    choice, _ = _decide("V2", SIGNED, {"vtpm": False}, secure_boot=False)
    assert choice is not None and choice.describe() == "Trusted Launch (secure boot off, vTPM off)"
    choice, problems = _decide("V1", SIGNED, {"security": "trusted_launch"})
    assert choice is None and "target.security: VM web01" in problems[0]
