"""Resolving a plan against real images built with sfdisk and mkfs: the resolved VMs and
disks, the subscription, helpers after detection, unusable images and Azure's size rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azrestore.formats.partition_types import ESP_GUID, LINUX_FS_GUID
from azrestore.formats.sizes import MiB, TiB
from azrestore.restore.plan import PlanError, check_helpers, load_plan, resolve_plan
from tests.support.disks import mkfs, needs_tools, new_disk, put, sfdisk
from tests.support.plans import OTHER_SUB, SUB, SUBNET, base, no_line, plan_for, vm_id, write


@needs_tools
@pytest.mark.anyio
async def test_resolve_uefi_linux_and_bios_windows(tmp_path: Path, images: dict[str, Path]) -> None:
    plan = plan_for(
        tmp_path,
        images,
        {"name": "web01", "os_image": "uefi-linux", "data": ["blank"], "tags": {"app": "web"}},
        {"name": "db01", "os_image": "bios-windows", "disk_sku": "Premium_LRS"},
        tags={"owner": "ops", "app": "default"},
    )
    resolved = await resolve_plan(plan, environ={})
    web, db = resolved.vms
    assert (web.os_family, web.generation) == ("linux", "V2")
    assert (db.os_family, db.generation) == ("windows", "V1")
    assert web.helper == vm_id("helper-linux") and db.helper == vm_id("helper-windows")
    assert web.os_disk.name == "web01-osdisk" and web.os_disk.lun is None
    assert [d.name for d in web.data_disks] == ["web01-data-lun0"]
    assert web.os_disk.sku == "StandardSSD_LRS" and db.os_disk.sku == "Premium_LRS"
    assert web.tags == {"owner": "ops", "app": "web"}
    assert (web.resource_group, web.subnet) == ("restored", SUBNET)
    assert web.os_disk.size == 96 * MiB and web.os_disk.report.layout.firmware == "uefi"
    assert resolved.subscription == SUB and resolved.warnings == ()
    assert json.loads(json.dumps(resolved.to_json()))["vms"][1]["generation"] == "V1"


@needs_tools
@pytest.mark.anyio
async def test_subscription_from_the_environment(tmp_path: Path, images: dict[str, Path]) -> None:
    plan = plan_for(tmp_path, images, {"name": "a", "os_image": "uefi-linux"}, subscription=None)
    resolved = await resolve_plan(plan, environ={"AZURE_SUBSCRIPTION_ID": SUB})
    assert resolved.subscription == SUB
    with pytest.raises(
        PlanError, match=r"target\.subscription: not set, and neither is AZURE_SUBSCRIPTION_ID"
    ):
        await resolve_plan(plan, environ={})
    with pytest.raises(PlanError, match="is not a subscription id"):
        await resolve_plan(plan, environ={"AZURE_SUBSCRIPTION_ID": "nope"})
    with pytest.raises(
        PlanError, match=rf"target\.subnet: is in subscription {SUB}, not in the target's"
    ):
        await resolve_plan(plan, environ={"AZURE_SUBSCRIPTION_ID": OTHER_SUB})


@needs_tools
@pytest.mark.anyio
async def test_helpers_checked_after_detection(tmp_path: Path, images: dict[str, Path]) -> None:
    data = base()
    data["helpers"] = {"windows": vm_id("helper-windows")}
    data["vms"] = [
        {
            "name": "db01",
            "size": "Standard_D2s_v5",
            "disks": [{"path": str(images["bios-windows"]), "role": "os"}],
        },
        {
            "name": "db02",
            "size": "Standard_D2s_v5",
            "disks": [{"path": str(images["dual-linux"]), "role": "os"}],
        },
    ]
    write(tmp_path, data)
    plan = load_plan(tmp_path / "plan.yaml")  # os: auto: nothing to check yet
    with pytest.raises(PlanError) as caught:
        await resolve_plan(plan, environ={})
    (problem,) = caught.value.problems
    assert problem.endswith(
        "helpers.linux: required: vms[1] (db02) is a Linux VM to prepare"
        " (or set prepare: false on it) (line 6)"  # the line of helpers
    )
    data["vms"][1]["prepare"] = False
    write(tmp_path, data)
    resolved = await resolve_plan(load_plan(tmp_path / "plan.yaml"), environ={})
    assert [vm.helper for vm in resolved.vms] == [vm_id("helper-windows"), None]
    assert [vm.preparation for vm in resolved.vms] == ["windows", None]
    check_helpers(resolved)  # the second stage on its own


@needs_tools
@pytest.mark.anyio
async def test_windows_vm_with_only_a_linux_helper_is_prepared_offline(
    tmp_path: Path, images: dict[str, Path]
) -> None:
    data = base()
    data["helpers"] = {"linux": [vm_id("helper-l1"), vm_id("helper-l2")]}
    data["vms"] = [
        {
            "name": "db01",
            "size": "Standard_D2s_v5",
            "disks": [{"path": str(images["bios-windows"]), "role": "os"}],
        },
    ]
    write(tmp_path, data)
    resolved = await resolve_plan(load_plan(tmp_path / "plan.yaml"), environ={})
    (vm,) = resolved.vms
    assert (vm.os_family, vm.helper_family, vm.preparation) == (
        "windows",
        "linux",
        "windows-offline",
    )
    data["helpers"] = {}
    write(tmp_path, data)
    with pytest.raises(PlanError) as caught:
        await resolve_plan(load_plan(tmp_path / "plan.yaml"), environ={})
    assert "a Linux one that prepares it offline" in str(caught.value)


@needs_tools
@pytest.mark.anyio
async def test_image_problems_name_the_field(tmp_path: Path, images: dict[str, Path]) -> None:
    missing = tmp_path / "nowhere" / "disk.raw"
    plan = plan_for(
        tmp_path,
        images,
        {"name": "a", "os_image": "uefi-linux", "data": ["empty", "vhd"]},
        {"name": "b", "os_image": "none", "missing": str(missing)},
        {"name": "c", "os_image": "whole-ntfs"},
    )
    with pytest.raises(PlanError) as caught:
        await resolve_plan(plan, environ={})
    source = tmp_path / "plan.yaml"
    # Size rules are checked once every image is read: their problems come after.
    assert sorted(no_line(p) for p in caught.value.problems) == sorted(
        [
            f"{source}: vms[0].disks[1].path: {images['empty']}: is empty",
            # A fixed VHD is read as the disk it holds; this one is too small for Azure.
            f"{source}: vms[0].disks[2].path: {images['vhd']} is 1.0 MiB: a managed disk is at"
            " least 20 MiB",
            f"{source}: vms[1].disks[0].path: {missing}: no such file",
            f"{source}: vms[2].disks[0].role: {images['whole-ntfs']} has no partition table"
            " (a whole-disk ntfs file system): it cannot boot as an OS disk (use role: data)",
        ]
    )


@needs_tools
@pytest.mark.anyio
async def test_managed_disk_minimum(tmp_path: Path, images: dict[str, Path]) -> None:
    plan = plan_for(tmp_path, images, {"name": "a", "os_image": "uefi-linux", "data": ["small"]})
    with pytest.raises(
        PlanError,
        match=r"vms\[0\]\.disks\[1\]\.path: .*small.raw is 16.0 MiB:"
        r" a managed disk is at least 20 MiB",
    ):
        await resolve_plan(plan, environ={})
    plan = plan_for(
        tmp_path,
        images,
        {"name": "a", "os_image": "uefi-linux", "data": ["small"]},
        disks="page-blob",
        storage_account="https://acct.blob.core.windows.net",
    )
    assert (await resolve_plan(plan, environ={})).vms[0].data_disks[0].size == 16 * MiB


@needs_tools
@pytest.mark.anyio
async def test_os_disk_size_rules(tmp_path: Path) -> None:
    """Over 2 TiB needs V2; over 4 TiB is too big for an OS disk (sparse images)."""
    big_bios = new_disk(tmp_path, 2 * TiB + 64 * MiB, "big-bios.raw")
    sfdisk(big_bios, "label: dos\nstart=2048, size=65536, type=83, bootable\n")
    put(big_bios, MiB, mkfs(tmp_path, "ext4", 32 * MiB))
    huge_uefi = new_disk(tmp_path, 4 * TiB + MiB, "huge-uefi.raw")
    sfdisk(
        huge_uefi,
        f"label: gpt\nstart=2048, size=32M, type={ESP_GUID}\nsize=64M, type={LINUX_FS_GUID}\n",
    )
    put(huge_uefi, MiB, mkfs(tmp_path, "vfat", 32 * MiB))
    put(huge_uefi, 33 * MiB, mkfs(tmp_path, "ext4", 40 * MiB))
    images = {"big-bios": big_bios, "huge-uefi": huge_uefi}
    plan = plan_for(
        tmp_path,
        images,
        {"name": "a", "os_image": "big-bios"},
        {"name": "b", "os_image": "huge-uefi"},
    )
    with pytest.raises(PlanError) as caught:
        await resolve_plan(plan, environ={})
    first, second = caught.value.problems
    assert (
        "vms[0].generation: " in first
        and "is 2.0 TiB: an OS disk over 2 TiB needs generation V2" in first
    )
    assert (
        "vms[1].disks[0].path: " in second and "is 4.0 TiB: an OS disk is at most 4 TiB" in second
    )


@pytest.mark.anyio
async def test_resolve_needs_no_tools_for_missing_images(tmp_path: Path) -> None:
    """Problems from several VMs come together, in plan order."""
    data = base()
    data["vms"].append(
        {"name": "b", "size": "Standard_B1s", "disks": [{"path": "b.raw", "role": "os"}]}
    )
    write(tmp_path, data)
    with pytest.raises(PlanError) as caught:
        await resolve_plan(load_plan(tmp_path / "plan.yaml"), environ={})
    assert [p.split(": ")[1] for p in caught.value.problems] == [
        "vms[0].disks[0].path",
        "vms[0].disks[1].path",
        "vms[1].disks[0].path",
    ]
