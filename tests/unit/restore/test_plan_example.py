"""The example plan that ``azrestore plan example`` prints loads as is."""

from __future__ import annotations

from pathlib import Path

from azrestore.formats.sizes import MiB
from azrestore.restore.plan import RestorePlan, example_plan, load_plan
from tests.support.plans import SUB


def test_example_plan_loads(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(example_plan())
    plan = load_plan(tmp_path / "plan.yaml")
    assert isinstance(plan, RestorePlan)
    assert plan.target.subscription == SUB
    assert plan.target.location == "westeurope"
    assert plan.target.disks == "managed"
    assert plan.proxy is not None and plan.proxy.idle_timeout == 300
    web, db = plan.vms
    assert web.disks[0].path == str(tmp_path / "backups" / "web01-os.raw")
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
