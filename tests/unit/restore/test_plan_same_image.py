"""One image reached through another spelling (a symlink, a hard link) is refused for a
second disk of a plan, as the same path is: by device and inode, naming both spellings;
from the library and from ``azrestore restore --dry-run`` (exit 2)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from azrestore.restore.plan import PlanError, resolve_plan
from tests.support.cli import assert_one_line_error, run_script
from tests.support.disks import needs_tools
from tests.support.plans import no_line, plan_for


def spelled_twice(tmp_path: Path, images: dict[str, Path], how: str) -> tuple[Path, Path]:
    """A copy of the data image, and another spelling of that copy."""
    original = tmp_path / "data.raw"
    shutil.copyfile(images["blank"], original)
    other = tmp_path / f"data-{how}.raw"
    if how == "symlink":
        other.symlink_to(original)
    else:
        os.link(original, other)
    return original, other


@needs_tools
@pytest.mark.anyio
@pytest.mark.parametrize("how", ["symlink", "hardlink"])
@pytest.mark.parametrize("where", ["one vm", "two vms"])
async def test_one_image_twice_through_a_link_is_refused(
    tmp_path: Path, images: dict[str, Path], how: str, where: str
) -> None:
    original, other = spelled_twice(tmp_path, images, how)
    images = {**images, "original": original, "other": other}
    if where == "one vm":
        vms = [{"name": "a", "os_image": "uefi-linux", "data": ["original", "other"]}]
        second = "vms[0].disks[2]"
    else:
        vms = [
            {"name": "a", "os_image": "uefi-linux", "data": ["original"]},
            {"name": "b", "os_image": "bios-windows", "data": ["other"]},
        ]
        second = "vms[1].disks[1]"
    plan = plan_for(tmp_path, images, *vms)
    with pytest.raises(PlanError) as caught:
        await resolve_plan(plan, environ={})
    assert [no_line(p) for p in caught.value.problems] == [
        f"{tmp_path / 'plan.yaml'}: {second}.path: {other} is the same image as {original},"
        " already used by vms[0].disks[1] (a link to it, or another name of it)"
    ]


@needs_tools
@pytest.mark.anyio
async def test_copies_are_not_the_same_image(tmp_path: Path, images: dict[str, Path]) -> None:
    original = tmp_path / "data.raw"
    copy = tmp_path / "copy.raw"
    shutil.copyfile(images["blank"], original)
    shutil.copyfile(images["blank"], copy)
    images = {**images, "original": original, "copy": copy}
    plan = plan_for(
        tmp_path, images, {"name": "a", "os_image": "uefi-linux", "data": ["original", "copy"]}
    )
    resolved = await resolve_plan(plan, environ={})
    assert len(resolved.vms[0].data_disks) == 2


@needs_tools
def test_restore_dry_run_exits_2_naming_both(tmp_path: Path, images: dict[str, Path]) -> None:
    original, other = spelled_twice(tmp_path, images, "symlink")
    images = {**images, "original": original, "other": other}
    plan_for(
        tmp_path,
        images,
        {"name": "a", "os_image": "uefi-linux", "data": ["original"]},
        {"name": "b", "os_image": "bios-windows", "data": ["other"]},
    )
    result = run_script("restore", tmp_path / "plan.yaml", "--dry-run")
    line = assert_one_line_error(result, 2)
    assert f"{other} is the same image as {original}" in line
