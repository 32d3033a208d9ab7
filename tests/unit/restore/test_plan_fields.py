"""Validating a plan's fields: every problem names its field, and what looks odd but is
allowed."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from azrestore.restore.plan import PlanError, load_plan
from tests.support.plans import OTHER_SUB, SUB, SUBNET, base, vm_id, write

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


def problems_of(tmp_path: Path, data: dict[str, Any]) -> tuple[str, ...]:
    write(tmp_path, data)
    with pytest.raises(PlanError) as caught:
        load_plan("plan.yaml")
    return caught.value.problems


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
        "unknown key (expected one of: path, format, role, lun",
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
