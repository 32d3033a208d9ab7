"""The plan's ``helpers`` forms: one VM id, a list, or ``{create: N, ...}``; errors are
one line naming the field as the plan writes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from azrestore.restore.plan import PlanError, parse_plan
from azrestore.restore.plan.helpers import DEFAULT_HELPER_SIZE
from tests.support.plans import base, vm_id


def _plan(tmp_path: Path, helpers: Any) -> Any:
    data = base()
    data["helpers"] = helpers
    return parse_plan(yaml.safe_dump(data), source="plan.yaml", base_dir=tmp_path)


def test_one_id_a_list_and_created_helpers(tmp_path: Path) -> None:
    one = _plan(tmp_path, {"linux": vm_id("h1")})
    assert one.helpers.linux == vm_id("h1")  # the single-string form stays a string
    pool = one.helpers.pool("linux")
    assert pool is not None and pool.vm_ids == (vm_id("h1"),) and pool.create is None
    assert one.helpers.pool("windows") is None
    many = _plan(tmp_path, {"linux": [vm_id("h1"), vm_id("h2")]}).helpers.pool("linux")
    assert many is not None and many.vm_ids == (vm_id("h1"), vm_id("h2"))
    made = _plan(tmp_path, {"windows": {"create": 2}}).helpers.pool("windows")
    assert made is not None and made.create is not None
    assert made.create.create == 2 and made.create.size == DEFAULT_HELPER_SIZE
    assert made.create.image_reference("windows")["publisher"] == "MicrosoftWindowsServer"
    image = {"create": 1, "image": "Debian:debian-12:12-gen2:latest", "size": "Standard_B2s"}
    custom = _plan(tmp_path, {"linux": image}).helpers.pool("linux")
    assert custom is not None and custom.create is not None
    assert custom.create.image_reference("linux") == {
        "publisher": "Debian",
        "offer": "debian-12",
        "sku": "12-gen2",
        "version": "latest",
    }


@pytest.mark.parametrize(
    ("helpers", "message"),
    [
        ({"linux": []}, "helpers.linux: an empty list"),
        ({"linux": [vm_id("h1"), vm_id("h1")]}, "is listed twice"),
        ({"linux": ["/nope"]}, "helpers.linux: not an Azure resource id"),
        ({"linux": 3}, "helpers.linux: a helper VM id, a list of them, or {create: N"),
        ({"linux": {"create": 0}}, "helpers.linux.create: should be greater than or equal to 1"),
        ({"linux": {"create": 17}}, "helpers.linux.create: should be less than or equal to 16"),
        ({"linux": {"create": 1, "image": "ubuntu"}}, "helpers.linux.image: 'ubuntu' is not a"),
        ({"linux": {"create": 1, "size": "big"}}, "helpers.linux.size: 'big' is not a VM size"),
        ({"linux": {"create": 1, "color": "red"}}, "helpers.linux.color: unknown key"),
        ({"linux": {"size": "Standard_B2s"}}, "helpers.linux.create: required"),
    ],
)
def test_bad_helpers_are_one_line_each(tmp_path: Path, helpers: Any, message: str) -> None:
    with pytest.raises(PlanError) as caught:
        _plan(tmp_path, helpers)
    problems = caught.value.problems
    assert len(problems) == 1, problems
    assert message in problems[0] and "\n" not in problems[0]
