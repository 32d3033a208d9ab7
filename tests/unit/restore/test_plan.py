"""The restore plan: loading and validation (every problem names its field), and
resolution against real images built with sfdisk and mkfs."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from azrestore.errors import InputError
from azrestore.formats.partition_types import BIOS_BOOT_GUID, ESP_GUID, LINUX_FS_GUID
from azrestore.formats.sizes import TiB
from azrestore.formats.vhd import fixed_vhd_footer
from azrestore.restore.plan import (
    PlanError,
    RestorePlan,
    check_helpers,
    example_plan,
    load_plan,
    parse_plan,
    parse_resource_id,
    resolve_plan,
)
from tests.support.disks import MiB, mkfs, needs_tools, new_disk, put, sfdisk
from tests.support.plans import OTHER_SUB, SUB, SUBNET, vm_id


def base() -> dict[str, Any]:
    return {
        "target": {
            "subscription": SUB,
            "resource_group": "restored",
            "location": "westeurope",
            "subnet": SUBNET,
        },
        "helpers": {"linux": vm_id("helper-linux"), "windows": vm_id("helper-windows")},
        "vms": [
            {
                "name": "web01",
                "size": "Standard_D2s_v5",
                "disks": [
                    {"path": "web01-os.raw", "role": "os"},
                    {"path": "web01-data.raw", "role": "data", "lun": 0},
                ],
            }
        ],
    }


def write(tmp_path: Path, data: dict[str, Any], name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path, so that plans load as ``plan.yaml`` and messages start with it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def no_line(problem: str) -> str:
    """A problem without its ``(line N)`` suffix (line numbers of dumped YAML vary)."""
    return re.sub(r" \(line \d+\)$", "", problem)


def problems_of(tmp_path: Path, data: dict[str, Any]) -> tuple[str, ...]:
    write(tmp_path, data)
    with pytest.raises(PlanError) as caught:
        load_plan("plan.yaml")
    return caught.value.problems


# --- loading --------------------------------------------------------------------------


def test_example_plan_loads(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(example_plan())
    plan = load_plan(tmp_path / "plan.yaml")
    assert isinstance(plan, RestorePlan)
    assert plan.target.subscription == SUB
    assert plan.target.location == "westeurope"
    assert plan.target.disks == "managed"
    assert plan.proxy is not None and plan.proxy.idle_timeout == 300
    web, db = plan.vms
    assert web.disks[0].path == tmp_path / "backups" / "web01-os.raw"
    assert (web.os, web.generation, web.power_on, web.wait_for_agent) == (
        "auto",
        "auto",
        True,
        True,
    )
    assert db.os == "windows" and db.private_ip == "10.0.0.20"
    assert db.disks[1].sku == "Premium_LRS" and db.disks[1].caching == "ReadOnly"
    config = plan.transfer.to_config()
    assert (config.concurrency, config.chunk_size, config.max_bandwidth) == (16, 4 * MiB, None)
    # Every line is commented or data; the example documents itself.
    assert example_plan().count("#") > 20


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
        tmp_path / "images" / "os.raw",
        Path("/srv/backups/data.raw"),
        tmp_path / "plans" / "sub" / "data2.raw",
    ]
    assert all(path.is_absolute() for path in paths)


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


Mutation = Callable[[dict[str, Any]], object]


def _vm(data: dict[str, Any], index: int = 0) -> dict[str, Any]:
    vm: dict[str, Any] = data["vms"][index]
    return vm


def _disk(data: dict[str, Any], vm: int = 0, disk: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = data["vms"][vm]["disks"][disk]
    return found


def _second_vm(data: dict[str, Any], **changes: Any) -> None:
    vm = copy.deepcopy(_vm(data))
    vm["name"] = "web02"
    vm["disks"] = [{"path": "web02-os.raw", "role": "os"}]
    vm.update(changes)
    data["vms"].append(vm)


CASES: list[tuple[str, Mutation, str, str]] = [
    ("no location", lambda d: d["target"].pop("location"), "target.location", "required"),
    (
        "bad location",
        lambda d: d["target"].update(location="west-europe!"),
        "target.location",
        "not an Azure region",
    ),
    (
        "bad group",
        lambda d: d["target"].update(resource_group="rg."),
        "target.resource_group",
        "not a resource group",
    ),
    (
        "bad subscription",
        lambda d: d["target"].update(subscription="mine"),
        "target.subscription",
        "not a subscription id",
    ),
    (
        "unknown key",
        lambda d: _disk(d).update(sku_name="x"),
        "vms[0].disks[0].sku_name",
        "unknown key (expected one of: path, role, lun",
    ),
    (
        "unknown top key",
        lambda d: d.update(vm=[]),
        "vm",
        "unknown key (expected one of: version, target",
    ),
    (
        "lun missing",
        lambda d: _disk(d, disk=1).pop("lun"),
        "vms[0].disks[1].lun",
        "required for a data disk",
    ),
    (
        "lun too big",
        lambda d: _disk(d, disk=1).update(lun=64),
        "vms[0].disks[1].lun",
        "less than or equal to 63 (got 64)",
    ),
    (
        "lun negative",
        lambda d: _disk(d, disk=1).update(lun=-1),
        "vms[0].disks[1].lun",
        "greater than or equal to 0",
    ),
    (
        "lun not a number",
        lambda d: _disk(d, disk=1).update(lun="first"),
        "vms[0].disks[1].lun",
        "valid integer",
    ),
    (
        "lun twice",
        lambda d: _vm(d)["disks"].append({"path": "b.raw", "role": "data", "lun": 0}),
        "vms[0].disks[2].lun",
        "LUN 0 is already used by vms[0].disks[1]",
    ),
    (
        "lun on os disk",
        lambda d: _disk(d).update(lun=1),
        "vms[0].disks[0].lun",
        "an OS disk has no LUN",
    ),
    (
        "two os disks",
        lambda d: _disk(d, disk=1).update(role="os", lun=None),
        "vms[0].disks[1].role",
        "a second OS disk (vms[0].disks[0] is one)",
    ),
    ("no os disk", lambda d: _disk(d).update(role="data", lun=5), "vms[0].disks", "no OS disk"),
    ("bad role", lambda d: _disk(d).update(role="boot"), "vms[0].disks[0].role", "'os' or 'data'"),
    ("no disks", lambda d: _vm(d).update(disks=[]), "vms[0].disks", "at least 1 item"),
    ("no vms", lambda d: d.update(vms=[]), "vms", "at least 1 item"),
    (
        "path twice in a vm",
        lambda d: _disk(d, disk=1).update(path="./web01-os.raw"),
        "vms[0].disks[1].path",
        "is already used by vms[0].disks[0]",
    ),
    (
        "path twice across vms",
        lambda d: _second_vm(d, disks=[{"path": "web01-data.raw", "role": "os"}]),
        "vms[1].disks[0].path",
        "is already used by vms[0].disks[1]",
    ),
    (
        "name twice",
        lambda d: _second_vm(d, name="WEB01"),
        "vms[1].name",
        "'WEB01' is already the name of vms[0]",
    ),
    (
        "name underscore",
        lambda d: _vm(d).update(name="web_01"),
        "vms[0].name",
        "'_' is not allowed",
    ),
    (
        "name ends with hyphen",
        lambda d: _vm(d).update(name="web01-"),
        "vms[0].name",
        "must not end with '-'",
    ),
    (
        "name ends with period",
        lambda d: _vm(d).update(name="web01."),
        "vms[0].name",
        "must not end with '.'",
    ),
    (
        "name starts with hyphen",
        lambda d: _vm(d).update(name="-web"),
        "vms[0].name",
        "must start with a letter or digit",
    ),
    ("name too long", lambda d: _vm(d).update(name="w" * 65), "vms[0].name", "1-64 characters"),
    ("bad size", lambda d: _vm(d).update(size="D2s_v5"), "vms[0].size", "not a VM size"),
    ("bad os", lambda d: _vm(d).update(os="bsd"), "vms[0].os", "'auto', 'linux' or 'windows'"),
    (
        "bad generation",
        lambda d: _vm(d).update(generation="V3"),
        "vms[0].generation",
        "'auto', 'V1' or 'V2' (got 'V3')",
    ),
    (
        "bad subnet",
        lambda d: d["target"].update(subnet="default"),
        "target.subnet",
        "not an Azure resource id",
    ),
    (
        "subnet is a vnet",
        lambda d: d["target"].update(subnet=SUBNET.rsplit("/subnets/", 1)[0]),
        "target.subnet",
        "is a Microsoft.Network/virtualNetworks id,"
        " not a Microsoft.Network/virtualNetworks/subnets id",
    ),
    (
        "vm subnet is a vm",
        lambda d: _vm(d).update(subnet=vm_id("x")),
        "vms[0].subnet",
        "not a Microsoft.Network/virtualNetworks/subnets id",
    ),
    (
        "no subnet at all",
        lambda d: d["target"].pop("subnet"),
        "vms[0].subnet",
        "required (there is no target.subnet)",
    ),
    (
        "helper is a subnet",
        lambda d: d["helpers"].update(linux=SUBNET),
        "helpers.linux",
        "not a Microsoft.Compute/virtualMachines id",
    ),
    (
        "helper bad subscription",
        lambda d: d["helpers"].update(linux=vm_id("h", sub="abc")),
        "helpers.linux",
        "is not a GUID",
    ),
    (
        "proxy vm",
        lambda d: d.update(proxy={"vm": "azproxy"}),
        "proxy.vm",
        "not an Azure resource id",
    ),
    (
        "proxy timeout",
        lambda d: d.update(proxy={"vm": vm_id("p"), "idle_timeout": -5}),
        "proxy.idle_timeout",
        "greater than or equal to 0",
    ),
    (
        "helper of another subscription",
        lambda d: d["helpers"].update(windows=vm_id("h", OTHER_SUB)),
        "helpers.windows",
        f"is in subscription {OTHER_SUB}, not in the target's",
    ),
    (
        "subnet of another subscription",
        lambda d: _vm(d).update(subnet=SUBNET.replace(SUB, OTHER_SUB)),
        "vms[0].subnet",
        "not in the target's",
    ),
    (
        "page-blob without account",
        lambda d: d["target"].update(disks="page-blob"),
        "target.storage_account",
        "required with disks: page-blob",
    ),
    (
        "account with managed",
        lambda d: d["target"].update(storage_account="https://acct.blob.core.windows.net"),
        "target.storage_account",
        "only used with disks: page-blob",
    ),
    (
        "bad account",
        lambda d: d["target"].update(disks="page-blob", storage_account="acct"),
        "target.storage_account",
        "not a storage account's blob URL",
    ),
    (
        "bad container",
        lambda d: d["target"].update(
            disks="page-blob",
            storage_account="https://acct.blob.core.windows.net",
            container="My_Vhds",
        ),
        "target.container",
        "not a container name",
    ),
    (
        "bad disks mode",
        lambda d: d["target"].update(disks="unmanaged"),
        "target.disks",
        "'managed' or 'page-blob'",
    ),
    (
        "linux helper missing",
        lambda d: (d["helpers"].pop("linux"), _vm(d).update(os="linux")),
        "helpers.linux",
        "required: vms[0] (web01) is a Linux VM to prepare",
    ),
    (
        "windows helper missing",
        lambda d: (d.pop("helpers"), _vm(d).update(os="windows")),
        "helpers.windows",
        "required: vms[0] (web01) is a Windows VM to prepare",
    ),
    (
        "chunk too big",
        lambda d: d.update(transfer={"chunk_size": "5MiB"}),
        "transfer.chunk_size",
        "at most 4 MiB",
    ),
    (
        "chunk not sectors",
        lambda d: d.update(transfer={"chunk_size": 1000}),
        "transfer.chunk_size",
        "multiple of 512",
    ),
    (
        "chunk not a size",
        lambda d: d.update(transfer={"chunk_size": "big"}),
        "transfer.chunk_size",
        "not a size: 'big'",
    ),
    (
        "bandwidth zero",
        lambda d: d.update(transfer={"max_bandwidth": 0}),
        "transfer.max_bandwidth",
        "must be positive",
    ),
    (
        "concurrency",
        lambda d: d.update(transfer={"concurrency": 0}),
        "transfer.concurrency",
        "greater than or equal to 1",
    ),
    (
        "checksum",
        lambda d: d.update(transfer={"checksum": "sha1"}),
        "transfer.checksum",
        "'md5', 'crc64' or 'none'",
    ),
    ("bad sku", lambda d: _vm(d).update(disk_sku="Fast_LRS"), "vms[0].disk_sku", "'Standard_LRS'"),
    (
        "ultra os disk",
        lambda d: _disk(d).update(sku="UltraSSD_LRS"),
        "vms[0].disks[0].sku",
        "UltraSSD_LRS cannot hold an OS disk",
    ),
    (
        "premium v2 os disk via vm",
        lambda d: _vm(d).update(disk_sku="PremiumV2_LRS"),
        "vms[0].disks[0].sku",
        "PremiumV2_LRS cannot hold an OS disk",
    ),
    (
        "bad disk name",
        lambda d: _disk(d).update(name="-disk"),
        "vms[0].disks[0].name",
        "not a disk name",
    ),
    (
        "disk name twice",
        lambda d: (_disk(d).update(name="d1"), _disk(d, disk=1).update(name="D1")),
        "vms[0].disks[1].name",
        "'D1' is already used by vms[0].disks[0]",
    ),
    (
        "bad caching",
        lambda d: _disk(d).update(caching="WriteBack"),
        "vms[0].disks[0].caching",
        "'None', 'ReadOnly' or 'ReadWrite'",
    ),
    (
        "bad ip",
        lambda d: _vm(d).update(private_ip="10.0.0.300"),
        "vms[0].private_ip",
        "not an IPv4 address",
    ),
    (
        "too many tags",
        lambda d: _vm(d).update(tags={f"t{i}": "x" for i in range(51)}),
        "vms[0].tags",
        "Azure allows at most 50",
    ),
    (
        "too many tags together",
        lambda d: (
            d["target"].update(tags={f"a{i}": "x" for i in range(30)}),
            _vm(d).update(tags={f"b{i}": "x" for i in range(30)}),
        ),
        "vms[0].tags",
        "more than 50 with target.tags",
    ),
    (
        "bad tag name",
        lambda d: d["target"].update(tags={"a/b": "x"}),
        "target.tags",
        "tag name 'a/b'",
    ),
    (
        "tag value too long",
        lambda d: d["target"].update(tags={"a": "x" * 257}),
        "target.tags",
        "longer than 256",
    ),
    (
        "wait without power",
        lambda d: _vm(d).update(power_on=False, wait_for_agent=True),
        "vms[0].wait_for_agent",
        "needs power_on: true",
    ),
    (
        "prepare not a bool",
        lambda d: _vm(d).update(prepare="maybe"),
        "vms[0].prepare",
        "valid boolean",
    ),
    ("version", lambda d: d.update(version=2), "version", "should be 1"),
    ("target not a mapping", lambda d: d.update(target="westeurope"), "target", "valid dictionary"),
]


@pytest.mark.parametrize(
    ("mutate", "loc", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_problem_names_its_field(
    in_tmp: Path, mutate: Mutation, loc: str, fragment: str
) -> None:
    data = base()
    mutate(data)
    problems = problems_of(in_tmp, data)
    prefix = f"plan.yaml: {loc}: "
    assert any(p.startswith(prefix) and fragment in p for p in problems), problems
    for problem in problems:
        assert problem.startswith("plan.yaml: ") and "\n" not in problem


def test_accepted_variants(in_tmp: Path) -> None:
    """Things that look odd but are allowed."""
    data = base()
    data["vms"][0]["name"] = "db01.prod-eu"  # periods inside, 64 characters max
    data["helpers"] = {}  # os: auto: helpers are checked after inspection
    _second_vm(data, name="w" * 64, os="windows", prepare=False)  # no helper needed
    data["vms"][1]["power_on"] = False  # wait_for_agent left at its default
    data["target"].update(disks="page-blob", storage_account="https://acct.blob.core.windows.net/")
    data["proxy"] = {"vm": vm_id("azproxy").replace("resourceGroups", "resourcegroups")}
    write(in_tmp, data)
    plan = load_plan("plan.yaml")
    assert plan.vms[1].power_on is False and plan.target.container == "vhds"
    emulator = base()
    emulator["target"].update(
        disks="page-blob", storage_account="http://127.0.0.1:10000/devstoreaccount1"
    )
    write(in_tmp, emulator)
    assert load_plan("plan.yaml").target.storage_account is not None


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


def test_parse_resource_id() -> None:
    parts = parse_resource_id(SUBNET, ("Microsoft.Network", ("virtualNetworks", "subnets")))
    assert parts.subscription == SUB and parts.resource_group == "net"
    assert parts.names == ("vnet", "default") and parts.name == "default"
    lower = SUBNET.lower()  # ids are case-insensitive
    assert (
        parse_resource_id(lower, ("Microsoft.Network", ("virtualNetworks", "subnets"))).name
        == "default"
    )
    with pytest.raises(
        ValueError,
        match=re.escape(
            "expected /subscriptions/<id>/resourceGroups/<group>/providers"
            "/Microsoft.Compute/virtualMachines/<vm>"
        ),
    ):
        parse_resource_id("/subscriptions/x", ("Microsoft.Compute", ("virtualMachines",)))
    with pytest.raises(ValueError, match="not an Azure resource id"):
        parse_resource_id(vm_id("a") + "/extra", ("Microsoft.Compute", ("virtualMachines",)))


# --- resolving against real images --------------------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Disk images, built once: read-only for every test."""
    work = tmp_path_factory.mktemp("images")
    built: dict[str, Path] = {}

    def disk(name: str, size: int = 64 * MiB) -> Path:
        built[name] = new_disk(work, size, f"{name}.raw")
        return built[name]

    # GPT, EFI system partition (FAT) + Linux filesystem (ext4): UEFI, Linux.
    uefi_linux = disk("uefi-linux", 96 * MiB)
    sfdisk(uefi_linux, f"label: gpt\nstart=2048, size=32M, type={ESP_GUID}\ntype={LINUX_FS_GUID}\n")
    put(uefi_linux, MiB, mkfs(work, "vfat", 32 * MiB))
    put(uefi_linux, 33 * MiB, mkfs(work, "ext4", 40 * MiB))
    # MBR, one active NTFS partition: BIOS, Windows.
    bios_windows = disk("bios-windows")
    sfdisk(bios_windows, "label: dos\nstart=2048, size=65536, type=7, bootable\n")
    put(bios_windows, MiB, mkfs(work, "ntfs", 32 * MiB))
    # MBR, active ext4: BIOS, Linux.
    bios_linux = disk("bios-linux")
    sfdisk(bios_linux, "label: dos\nstart=2048, type=83, bootable\n")
    put(bios_linux, MiB, mkfs(work, "ext4", 32 * MiB))
    # GPT with a BIOS boot partition and an ESP (cloud images boot either way).
    dual = disk("dual-linux", 96 * MiB)
    sfdisk(
        dual,
        f"label: gpt\nstart=2048, size=1M, type={BIOS_BOOT_GUID}\n"
        f"size=16M, type={ESP_GUID}\ntype={LINUX_FS_GUID}\n",
    )
    put(dual, 3 * MiB, mkfs(work, "vfat", 16 * MiB))
    put(dual, 19 * MiB, mkfs(work, "ext4", 40 * MiB))
    # GPT with only an ESP: UEFI, OS family unknown.
    esp_only = disk("esp-only")
    sfdisk(esp_only, f"label: gpt\nstart=2048, type={ESP_GUID}\n")
    put(esp_only, MiB, mkfs(work, "vfat", 32 * MiB))
    # MBR, ext4, no active flag and no boot code: firmware unknown.
    no_boot = disk("no-boot-linux")
    sfdisk(no_boot, "label: dos\nstart=2048, type=83\n")
    put(no_boot, MiB, mkfs(work, "ext4", 32 * MiB))
    # A data disk without a partition table, a whole-disk file system, an empty file, a VHD.
    disk("blank", 32 * MiB)
    built["whole-ntfs"] = mkfs(work, "ntfs", 32 * MiB)
    built["small"] = new_disk(work, 16 * MiB, "small.raw")
    built["empty"] = new_disk(work, 0, "empty.raw")
    vhd = work / "disk.vhd"
    with vhd.open("wb") as file:
        file.truncate(MiB)
        file.seek(MiB)
        file.write(fixed_vhd_footer(MiB))
    built["vhd"] = vhd
    return built


def plan_for(
    tmp_path: Path, images: dict[str, Path], *vms: dict[str, Any], **target: Any
) -> RestorePlan:
    """A plan in tmp_path whose disks name images by key (``"os": "uefi-linux"``)."""
    data = base()
    data["target"].update(target)
    data["vms"] = []
    for vm in vms:
        vm = dict(vm)
        os_path = images.get(vm.pop("os_image"), vm.get("missing", ""))
        disks: list[dict[str, Any]] = [{"path": str(os_path), "role": "os"}]
        disks += [
            {"path": str(images[key]), "role": "data", "lun": lun}
            for lun, key in enumerate(vm.pop("data", []))
        ]
        vm.pop("missing", None)
        data["vms"].append({"size": "Standard_D2s_v5", "disks": disks, **vm})
    write(tmp_path, data)
    return load_plan(tmp_path / "plan.yaml")


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


@needs_tools
@pytest.mark.anyio
async def test_helpers_checked_after_detection(tmp_path: Path, images: dict[str, Path]) -> None:
    data = base()
    data["helpers"] = {"linux": vm_id("helper-linux")}
    data["vms"] = [
        {
            "name": "db01",
            "size": "Standard_D2s_v5",
            "disks": [{"path": str(images["bios-windows"]), "role": "os"}],
        },
        {
            "name": "db02",
            "size": "Standard_D2s_v5",
            "prepare": False,
            "disks": [{"path": str(images["dual-linux"]), "role": "os"}],
        },
    ]
    write(tmp_path, data)
    plan = load_plan(tmp_path / "plan.yaml")  # os: auto: nothing to check yet
    with pytest.raises(PlanError) as caught:
        await resolve_plan(plan, environ={})
    (problem,) = caught.value.problems
    assert problem.endswith(
        "helpers.windows: required: vms[0] (db01) is a Windows VM to prepare"
        " (or set prepare: false on it) (line 6)"  # the line of helpers
    )
    data["vms"][0]["prepare"] = False
    write(tmp_path, data)
    resolved = await resolve_plan(load_plan(tmp_path / "plan.yaml"), environ={})
    assert [vm.helper for vm in resolved.vms] == [None, None]
    check_helpers(resolved)  # the second stage on its own


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
    assert [no_line(p) for p in caught.value.problems] == [
        f"{source}: vms[0].disks[1].path: {images['empty']}: is empty",
        f"{source}: vms[0].disks[2].path: {images['vhd']}: is a VHD (fixed) image, not a raw disk"
        " (convert it to raw first, e.g. qemu-img convert -O raw)",
        f"{source}: vms[1].disks[0].path: {missing}: no such file",
        f"{source}: vms[2].disks[0].role: {images['whole-ntfs']} has no partition table"
        " (a whole-disk ntfs file system): it cannot boot as an OS disk (use role: data)",
    ]


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
