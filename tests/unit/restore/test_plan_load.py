"""Loading a plan: defaults, paths against the plan's directory, forgiving spellings, YAML
that is not a plan, unreadable files, and problems one line each with their lines."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from azrestore.errors import InputError
from azrestore.formats.sizes import MiB
from azrestore.restore.plan import PlanError, load_plan, parse_plan
from tests.support.plans import SUB, SUBNET, base, write


def test_minimal_plan_and_defaults(in_tmp: Path) -> None:
    data = base()
    del data["target"]["subscription"]
    write(in_tmp, data)
    plan = load_plan("plan.yaml")
    assert plan.source == "plan.yaml"
    assert plan.target.subscription is None
    assert plan.target.disk_sku == "StandardSSD_LRS"
    assert plan.proxy is None
    vm = plan.vms[0]
    assert (vm.prepare, vm.power_on, vm.disk_sku, vm.os_disk) == (True, True, None, vm.disks[0])


def test_relative_paths_are_relative_to_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plans = tmp_path / "plans"
    plans.mkdir()
    data = base()
    data["vms"][0]["disks"] = [
        {"path": "../images/./os.raw", "role": "os"},
        {"path": "/srv/backups/data.raw", "role": "data", "lun": 3},
        {"path": "sub/dir/../data2.raw", "role": "data", "lun": 4},
    ]
    write(plans, data)
    monkeypatch.chdir(tmp_path)  # not where the plan is
    plan = load_plan(Path("plans") / "plan.yaml")
    paths = [disk.path for disk in plan.vms[0].disks]
    assert paths == [
        str(tmp_path / "images" / "os.raw"),
        "/srv/backups/data.raw",
        str(tmp_path / "plans" / "sub" / "data2.raw"),
    ]
    assert all(Path(path).is_absolute() for path in paths)


def test_forgiving_spellings(in_tmp: Path) -> None:
    data = base()
    data["target"]["location"] = "West Europe"
    data["target"]["disk_sku"] = "premium_lrs"
    data["target"]["tags"] = {"cost": 100, "prod": True}
    data["vms"][0].update(os="Linux", generation="v2")
    data["transfer"] = {"chunk_size": "1MiB", "max_bandwidth": "200MB/s", "concurrency": 4}
    plan = parse_plan(yaml.safe_dump(data), base_dir=in_tmp)
    assert plan.target.location == "westeurope"
    assert plan.target.disk_sku == "Premium_LRS"
    assert plan.target.tags == {"cost": "100", "prod": "true"}
    assert (plan.vms[0].os, plan.vms[0].generation) == ("linux", "V2")
    config = plan.transfer.to_config()
    assert (config.chunk_size, config.max_bandwidth, config.concurrency) == (MiB, 200_000_000, 4)


def test_several_problems_one_line_each_with_lines(in_tmp: Path) -> None:
    text = f"""\
target:
  subscription: {SUB}
  resource_group: restored
  location: westeurope
  subnet: {SUBNET}
vms:
  - name: web01
    size: Standard_D2s_v5
    disks:
      - {{path: os.raw, role: os}}
      - {{path: data.raw, role: data}}
  - name: web01
    size: Standard_D2s_v5
    os: linux
    disks:
      - path: os2.raw
        role: os
      - path: d.raw
        role: data
        lun: 99
"""
    (in_tmp / "plan.yaml").write_text(text)
    with pytest.raises(PlanError) as caught:
        load_plan("plan.yaml")
    error = caught.value
    assert isinstance(error, InputError) and error.exit_code == 2
    assert str(error).splitlines() == list(error.problems)
    assert error.problems == (
        "plan.yaml: vms[1].disks[1].lun: should be less than or equal to 63 (got 99) (line 20)",
    )
    (in_tmp / "plan.yaml").write_text(text.replace("lun: 99", "lun: 0"))
    with pytest.raises(PlanError) as caught:
        load_plan("plan.yaml")
    assert caught.value.problems == (
        "plan.yaml: helpers.linux: required: vms[1] (web01) is a Linux VM to prepare"
        " (or set prepare: false on it) (line 1)",
        "plan.yaml: vms[0].disks[1].lun: required for a data disk (line 11)",
        "plan.yaml: vms[1].name: 'web01' is already the name of vms[0] (line 12)",
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "not an empty file"),
        ("- a\n- b\n", "not a list"),
        ("target: [\n", "not valid YAML"),
        (
            "target: {}\nvms: []\ntarget: {}\n",
            "duplicate key 'target' (first on line 1) (line 3, column 1)",
        ),
        ("? [a]\n: b\n", "a key must be a plain value"),
    ],
)
def test_not_a_plan(in_tmp: Path, text: str, fragment: str) -> None:
    (in_tmp / "plan.yaml").write_text(text)
    with pytest.raises(PlanError) as caught:
        load_plan("plan.yaml")
    (problem,) = caught.value.problems
    assert problem.startswith("plan.yaml: ") and fragment in problem


def test_unreadable_plan(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_plan(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="is a directory"):
        load_plan(tmp_path)
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="not UTF-8"):
        load_plan(tmp_path / "bin.yaml")
