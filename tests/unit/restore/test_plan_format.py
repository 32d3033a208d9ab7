"""A plan disk's ``format:`` (one of the source formats, checked when the plan is read and
used when it is resolved), NBD URLs as disk paths (kept as they are, no file checks), and
page-blob mode's 8 TiB rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from azrestore.formats.sizes import TiB
from azrestore.restore.plan import PlanError, load_plan, resolve_plan
from azrestore.restore.plan import resolve as resolve_module
from azrestore.sources.report import ImageReport, inspect_image
from tests.support.disks import needs_tools, new_disk
from tests.support.plans import base, no_line, plan_for, write

NBD = "nbd+unix:///disk0?socket=/run/backup/nbd.sock"


def with_disks(tmp_path: Path, *disks: dict[str, Any]) -> Path:
    data = base()
    data["vms"][0]["disks"] = list(disks)
    return write(tmp_path, data)


def test_format_is_read_and_checked(tmp_path: Path) -> None:
    plan = load_plan(
        with_disks(
            tmp_path,
            {"path": "os.qcow2", "format": "qcow2", "role": "os"},
            {"path": "data.raw", "role": "data", "lun": 0},
            {"path": NBD, "format": "nbd", "role": "data", "lun": 1},
        )
    )
    disks = plan.vms[0].disks
    assert [d.format for d in disks] == ["qcow2", None, "nbd"]
    assert disks[0].path == str(tmp_path / "os.qcow2")
    assert disks[2].path == NBD  # not joined to the plan's folder, slashes kept

    with pytest.raises(PlanError) as caught:
        load_plan(with_disks(tmp_path, {"path": "os.img", "format": "qcow3", "role": "os"}))
    (problem,) = caught.value.problems
    assert no_line(problem) == (
        f"{tmp_path / 'plan.yaml'}: vms[0].disks[0].format: 'qcow3' is not an image format"
        " (one of: raw, qcow2, vmdk, vhdx, vpc, vdi, nbd)"
    )


def test_the_same_url_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as caught:
        load_plan(
            with_disks(
                tmp_path,
                {"path": NBD, "role": "os"},
                {"path": NBD, "role": "data", "lun": 0},
            )
        )
    assert any("vms[0].disks[1].path: " in p and "already used" in p for p in caught.value.problems)


@needs_tools
@pytest.mark.anyio
async def test_resolve_opens_each_disk_with_its_format(
    tmp_path: Path, images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: dict[str, str | None] = {}

    async def recording(location: str, *, image_format: str | None = None) -> ImageReport:
        asked[location] = image_format
        return await inspect_image(location)

    monkeypatch.setattr(resolve_module, "inspect_image", recording)
    data = base()
    data["vms"][0]["disks"] = [
        {"path": str(images["uefi-linux"]), "format": "raw", "role": "os"},
        {"path": str(images["blank"]), "role": "data", "lun": 0},
    ]
    write(tmp_path, data)
    await resolve_plan(load_plan(tmp_path / "plan.yaml"), environ={})
    assert asked == {str(images["uefi-linux"]): "raw", str(images["blank"]): None}


@needs_tools
@pytest.mark.anyio
async def test_a_format_that_does_not_fit_is_a_problem_of_that_disk(
    tmp_path: Path, images: dict[str, Path]
) -> None:
    data = base()
    data["vms"][0]["disks"] = [
        {"path": str(images["uefi-linux"]), "role": "os"},
        {"path": str(images["blank"]), "format": "vmdk", "role": "data", "lun": 0},
    ]
    write(tmp_path, data)
    with pytest.raises(PlanError) as caught:
        await resolve_plan(load_plan(tmp_path / "plan.yaml"), environ={})
    (problem,) = caught.value.problems
    assert "vms[0].disks[1].path: " in problem and str(images["blank"]) in problem


@needs_tools
@pytest.mark.anyio
async def test_page_blob_mode_holds_at_most_8_tib(tmp_path: Path, images: dict[str, Path]) -> None:
    big = new_disk(tmp_path, 9 * TiB, "big-data.raw")
    images = {**images, "big": big}
    page_blob = {"disks": "page-blob", "storage_account": "https://acct.blob.core.windows.net"}
    plan = plan_for(
        tmp_path, images, {"name": "a", "os_image": "uefi-linux", "data": ["big"]}, **page_blob
    )
    with pytest.raises(PlanError) as caught:
        await resolve_plan(plan, environ={})
    (problem,) = caught.value.problems
    assert "vms[0].disks[1].path: " in problem and "larger than a page blob can hold" in problem
    # As a managed disk, 9 TiB is allowed (a data disk: no OS disk rule).
    managed = plan_for(tmp_path, images, {"name": "a", "os_image": "uefi-linux", "data": ["big"]})
    resolved = await resolve_plan(managed, environ={})
    assert resolved.vms[0].data_disks[0].size == 9 * TiB
