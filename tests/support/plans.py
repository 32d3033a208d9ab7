"""Resource ids, subscriptions and plans shared by the restore-plan tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from azrestore.restore.plan import RestorePlan, load_plan

SUB = "00000000-0000-0000-0000-000000000000"


OTHER_SUB = "11111111-1111-1111-1111-111111111111"


SUBNET = (
    f"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network"
    "/virtualNetworks/vnet/subnets/default"
)


def vm_id(name: str, sub: str = SUB) -> str:
    group = f"/subscriptions/{sub}/resourceGroups/infra"
    return f"{group}/providers/Microsoft.Compute/virtualMachines/{name}"


def target() -> dict[str, Any]:
    """The plan's ``target`` section: where the tests restore to."""
    return {
        "subscription": SUB,
        "resource_group": "restored",
        "location": "westeurope",
        "subnet": SUBNET,
    }


def helpers() -> dict[str, str]:
    """The plan's ``helpers`` section: the Linux and Windows helper VMs."""
    return {"linux": vm_id("helper-linux"), "windows": vm_id("helper-windows")}


def base() -> dict[str, Any]:
    return {
        "target": target(),
        "helpers": helpers(),
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


def no_line(problem: str) -> str:
    """A problem without its ``(line N)`` suffix (line numbers of dumped YAML vary)."""
    return re.sub(r" \(line \d+\)$", "", problem)


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
