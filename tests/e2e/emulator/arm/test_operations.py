"""Long-running operations and injected faults: polls throttled or failing, operations
ending Failed, conflicts and delays, the fault spec parser, and the monitors' shapes."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from azure.core.exceptions import HttpResponseError

from azrestore.emulator.arm import ArmFaultRule
from azrestore.emulator.azurite import AzuriteProcess
from azrestore.errors import InputError
from azrestore.formats.sizes import MiB
from tests.support.arm.disks import (
    create_upload_disk,
    disk_state,
    upload_disk,
)
from tests.support.arm.env import RG, ArmEnv, arm_env, error_code

pytestmark = pytest.mark.anyio


async def test_throttled_poll_is_retried(azurite: AzuriteProcess) -> None:
    rules = [ArmFaultRule.from_spec("operations/poll:status=429,retry_after=0.05,nth=1")]
    async with arm_env(azurite, rules=rules) as env:
        disk = await create_upload_disk(env, "d", 32 * MiB + 512)
        assert disk.properties is not None
        assert disk.properties.disk_state == "ReadyToUpload"
        polls = [e for e in env.sim.log() if e.operation == "operations/poll"]
        assert polls[0].status == 429 and polls[0].fault and polls[0].outcome == "TooManyRequests"
        assert polls[-1].status == 200


async def test_server_errors_on_the_status_monitor_are_retried(azurite: AzuriteProcess) -> None:
    rules = [
        # azure-core retries a 5xx at once, then backs off (0.8 s, 1.6 s, ...): one each.
        ArmFaultRule(operation="operations/poll", status=503, nth=1),
        ArmFaultRule(operation="operations/poll", status=500, code="InternalServerError", nth=3),
    ]
    async with arm_env(azurite, rules=rules) as env:
        await upload_disk(env, "d")
        faults = [(e.status, e.outcome) for e in env.sim.log() if e.fault]
        assert faults == [(503, "ServiceUnavailable"), (500, "InternalServerError")]


async def test_operation_ending_failed_raises_with_its_code(azurite: AzuriteProcess) -> None:
    rules = [
        ArmFaultRule(
            operation="disks/beginGetAccess",
            action="fail",
            code="InternalDiskManagementError",
            message="An internal error occurred while granting access.",
            times=1,
        )
    ]
    async with arm_env(azurite, rules=rules) as env:
        await create_upload_disk(env, "d", 32 * MiB + 512)
        poller = await env.compute.disks.begin_grant_access(
            RG, "d", {"access": "Write", "durationInSeconds": 60}
        )
        with pytest.raises(HttpResponseError) as exc:
            await poller.result()
        assert error_code(exc.value) == "InternalDiskManagementError"
        assert "granting access" in str(exc.value.message)
        # Nothing changed: the grant can be retried.
        assert await disk_state(env, "d") == "ReadyToUpload"
        poller = await env.compute.disks.begin_grant_access(
            RG, "d", {"access": "Write", "durationInSeconds": 60}
        )
        assert (await poller.result()).access_sas


async def test_injected_conflict_and_delay(azurite: AzuriteProcess) -> None:
    rules = [
        ArmFaultRule.from_spec("disks/write:status=409,method=PUT,nth=1"),
        ArmFaultRule.from_spec("disks/read:delay=0.2,times=1"),
    ]
    async with arm_env(azurite, rules=rules) as env:
        with pytest.raises(HttpResponseError) as exc:
            await create_upload_disk(env, "d", 32 * MiB + 512)
        assert exc.value.status_code == 409 and error_code(exc.value) == "Conflict"
        started = anyio.current_time()
        disk = await create_upload_disk(env, "d", 32 * MiB + 512)
        assert disk.name == "d" and anyio.current_time() - started >= 0.2


def test_fault_spec_parser() -> None:
    rule = ArmFaultRule.from_spec("virtualMachines/start:fail,code=OSProvisioningTimedOut,nth=2")
    assert (rule.operation, rule.action, rule.code, rule.nth) == (
        "virtualMachines/start",
        "fail",
        "OSProvisioningTimedOut",
        2,
    )
    rule = ArmFaultRule.from_spec("*:status=429,retry_after=1.5,rate=0.25,seed=7")
    assert (rule.status, rule.retry_after, rule.rate, rule.seed) == (429, 1.5, 0.25, 7)
    assert rule.error().headers == {"Retry-After": "1.5"}
    assert rule.error().code == "TooManyRequests"
    assert ArmFaultRule.from_spec("disks/*:delay=2").delay == 2.0
    bad_specs = ["", "disks/write", "disks/write:explode", "x:status=abc", "x:status=200"]
    for bad in [*bad_specs, "x:nth=0"]:
        with pytest.raises(InputError):
            ArmFaultRule.from_spec(bad)


async def test_status_monitor_and_location_shapes(env: ArmEnv) -> None:
    # Read the LRO headers the way azure-core does, through the SDK's raw response hook.
    captured: dict[str, Any] = {}

    def keep(pipeline_response: Any, *args: Any) -> Any:
        response = pipeline_response.http_response
        # The hook sees every response of the operation; keep the first one.
        captured.setdefault("headers", dict(response.headers))
        captured.setdefault("status", response.status_code)
        return pipeline_response

    await create_upload_disk(env, "d", 32 * MiB + 512)
    poller = await env.compute.disks.begin_grant_access(
        RG, "d", {"access": "Write", "durationInSeconds": 60}, raw_response_hook=keep
    )
    await poller.result()
    headers = captured["headers"]
    assert captured["status"] == 202
    assert (
        "/providers/Microsoft.Compute/locations/westus/DiskOperations/"
        in (headers["Azure-AsyncOperation"])
    )
    assert headers["Location"].endswith("&monitor=true")
    assert int(headers["Retry-After"]) >= 1
    polls = [e for e in env.sim.log() if e.operation.startswith("operations/")]
    assert {e.operation for e in polls} == {"operations/poll", "operations/result"}
    assert all(e.resource_id == env.disk_id("d") for e in polls)
