"""Each VM's OS family and generation, decided from real images built with sfdisk and
mkfs and from what the plan says."""

from __future__ import annotations

from pathlib import Path

import pytest

from azrestore.restore.plan import PlanError, resolve_plan
from tests.support.disks import needs_tools
from tests.support.plans import no_line, plan_for, vm_id


@needs_tools
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("image", "generation", "expected"),
    [
        ("uefi-linux", "V2", "V2"),
        ("bios-linux", "V1", "V1"),
        ("dual-linux", "auto", "V2"),  # UEFI preferred when the disk can do both
        ("dual-linux", "V1", "V1"),  # ... but it has a BIOS boot partition too
        ("dual-linux", "V2", "V2"),
    ],
)
async def test_generation_accepted(
    tmp_path: Path, images: dict[str, Path], image: str, generation: str, expected: str
) -> None:
    plan = plan_for(tmp_path, images, {"name": "a", "os_image": image, "generation": generation})
    resolved = await resolve_plan(plan, environ={})
    assert resolved.vms[0].generation == expected and resolved.warnings == ()


@needs_tools
@pytest.mark.anyio
async def test_forcing_v1_on_uefi_is_refused(tmp_path: Path, images: dict[str, Path]) -> None:
    plan = plan_for(tmp_path, images, {"name": "a", "os_image": "uefi-linux", "generation": "V1"})
    with pytest.raises(PlanError) as caught:
        await resolve_plan(plan, environ={})
    (problem,) = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'plan.yaml'}: vms[0].generation: V1 VMs boot with BIOS")
    assert "boots with UEFI (GPT: EFI system partition (fat" in problem
    assert "would not start" in problem and "use generation: V2 (or auto)" in problem


@needs_tools
@pytest.mark.anyio
async def test_forcing_v2_on_bios_is_refused(tmp_path: Path, images: dict[str, Path]) -> None:
    plan = plan_for(tmp_path, images, {"name": "a", "os_image": "bios-windows", "generation": "V2"})
    with pytest.raises(
        PlanError,
        match=r"vms\[0\]\.generation: V2 VMs boot with UEFI, but .* boots with BIOS"
        r" \(MBR: HPFS/NTFS/exFAT \(ntfs\); no EFI system partition\).*use generation: V1",
    ):
        await resolve_plan(plan, environ={})


@needs_tools
@pytest.mark.anyio
async def test_unknown_firmware(tmp_path: Path, images: dict[str, Path]) -> None:
    plan = plan_for(tmp_path, images, {"name": "a", "os_image": "no-boot-linux"})
    with pytest.raises(
        PlanError,
        match=r"vms\[0\]\.generation: cannot tell whether .* boots with UEFI or BIOS"
        r" .*set generation: V2 \(UEFI\) or V1 \(BIOS\)",
    ):
        await resolve_plan(plan, environ={})
    plan = plan_for(
        tmp_path, images, {"name": "a", "os_image": "no-boot-linux", "generation": "V1"}
    )
    resolved = await resolve_plan(plan, environ={})
    assert resolved.vms[0].generation == "V1"
    (warning,) = resolved.warnings
    assert "vms[0].generation: V1 as the plan says" in warning and "does not show" in warning


@needs_tools
@pytest.mark.anyio
async def test_unknown_os_with_auto_is_refused(tmp_path: Path, images: dict[str, Path]) -> None:
    plan = plan_for(tmp_path, images, {"name": "a", "os_image": "esp-only"})
    with pytest.raises(PlanError) as caught:
        await resolve_plan(plan, environ={})
    (problem,) = caught.value.problems
    assert "vms[0].os: cannot tell the OS family of" in problem
    assert "(GPT: EFI system partition (fat" in problem
    assert no_line(problem).endswith("set os: linux or os: windows")
    # Told, it goes ahead (no contradiction, no warning).
    plan = plan_for(tmp_path, images, {"name": "a", "os_image": "esp-only", "os": "linux"})
    resolved = await resolve_plan(plan, environ={})
    assert (resolved.vms[0].os_family, resolved.warnings) == ("linux", ())


@needs_tools
@pytest.mark.anyio
async def test_forced_os_contradicting_detection_is_a_warning(
    tmp_path: Path, images: dict[str, Path]
) -> None:
    plan = plan_for(tmp_path, images, {"name": "a", "os_image": "uefi-linux", "os": "windows"})
    resolved = await resolve_plan(plan, environ={})
    assert resolved.vms[0].os_family == "windows"
    assert resolved.vms[0].helper == vm_id("helper-windows")
    (warning,) = resolved.warnings
    assert "vms[0].os: set to windows, but" in warning and "looks like linux" in warning
