"""The Resource Manager simulator's contract, through the real azure-mgmt-compute aio client:
managed disks (Upload/Import/Empty, grant and revoke with Azure's VHD checks), long-running
operations with faults, authentication, state and log, and the Emulator bundle."""

from __future__ import annotations

import json
import ssl
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute.aio import ComputeManagementClient
from azure.storage.blob.aio import BlobClient, BlobServiceClient

from azrestore.emulator import Emulator
from azrestore.emulator.arm import ArmFaultRule
from azrestore.emulator.azurite import AzuriteProcess, EmulatorError, find_azurite
from azrestore.errors import InputError
from azrestore.formats.vhd import DISK_TYPE_DYNAMIC, VhdFooter, fixed_vhd_footer
from tests.support.arm import (
    LOCATION,
    RG,
    ArmEnv,
    MiB,
    StaticToken,
    arm_env,
    read_tail,
    upload_disk,
    write_pages,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def env(azurite: AzuriteProcess) -> AsyncIterator[ArmEnv]:
    async with arm_env(azurite) as environment:
        yield environment


def error_code(exc: HttpResponseError) -> str | None:
    return exc.error.code if exc.error is not None else None


async def create_upload_disk(env: ArmEnv, name: str, size: int) -> Any:
    poller = await env.compute.disks.begin_create_or_update(
        RG,
        name,
        {
            "location": LOCATION,
            "properties": {"creationData": {"createOption": "Upload", "uploadSizeBytes": size}},
        },
    )
    return await poller.result()


def _footer_with(virtual_size: int, **changes: Any) -> bytes:
    fields = VhdFooter.parse(fixed_vhd_footer(virtual_size)).__dict__ | changes
    return VhdFooter(**fields).pack()


# -- managed disk upload ----------------------------------------------------------------------


async def test_upload_disk_lifecycle(env: ArmEnv) -> None:
    size = 32 * MiB + 512
    poller = await env.compute.disks.begin_create_or_update(
        RG,
        "restored-os",
        {
            "location": LOCATION,
            "tags": {"source": "backup-1"},
            "properties": {
                "osType": "Linux",
                "hyperVGeneration": "V2",
                "creationData": {"createOption": "Upload", "uploadSizeBytes": size},
            },
        },
    )
    disk = await poller.result()
    assert disk.properties.disk_state == "ReadyToUpload"
    assert disk.properties.provisioning_state == "Succeeded"
    assert disk.properties.creation_data.upload_size_bytes == size
    assert disk.properties.disk_size_bytes == 32 * MiB
    assert disk.properties.disk_size_gb == 1
    assert disk.properties.hyper_v_generation == "V2"
    assert disk.properties.os_type == "Linux"
    assert disk.properties.unique_id and disk.properties.time_created is not None
    assert disk.tags == {"source": "backup-1"}
    assert disk.managed_by is None

    poller = await env.compute.disks.begin_grant_access(
        RG, "restored-os", {"access": "Write", "durationInSeconds": 600}
    )
    access = await poller.result()
    assert access.access_sas.startswith(env.gateway.account_url + "/")
    assert (await env.compute.disks.get(RG, "restored-os")).properties.disk_state == "ActiveUpload"

    # The blob exists with exactly the upload size; pages go straight to it.
    data = b"\x5a" * (512 * 1024)
    await write_pages(access.access_sas, 0, data)
    await write_pages(access.access_sas, size - 512, fixed_vhd_footer(32 * MiB))
    async with BlobClient.from_blob_url(access.access_sas) as blob:
        assert (await blob.get_blob_properties()).size == size
        # A disk SAS allows page reads and writes only, not re-creating the blob.
        with pytest.raises(HttpResponseError) as refused:
            await blob.upload_blob(b"x" * 512, blob_type="PageBlob", overwrite=True)
        assert refused.value.status_code == 403
        assert refused.value.error_code == "AuthorizationPermissionMismatch"

    poller = await env.compute.disks.begin_revoke_access(RG, "restored-os")
    assert await poller.result() is None
    disk = await env.compute.disks.get(RG, "restored-os")
    assert disk.properties.disk_state == "Unattached"

    # After revoke the SAS no longer works.
    with pytest.raises(HttpResponseError) as revoked:
        await read_tail(access.access_sas)
    assert revoked.value.status_code == 403
    assert revoked.value.error_code == "AuthenticationFailed"

    view = env.sim.state().disk("restored-os")
    assert view.disk_state == "Unattached" and view.create_option == "Upload"
    operations = [
        (e.operation, e.outcome) for e in env.sim.log(polls=False) if e.kind == "operation"
    ]
    assert operations == [
        ("disks/write", "Succeeded"),
        ("disks/beginGetAccess", "Succeeded"),
        ("disks/endGetAccess", "Succeeded"),
    ]


@pytest.mark.parametrize(
    ("size", "fragment"),
    [
        (20 * MiB, "must be between 20972032 bytes"),
        (32 * 1024 * 1024 * MiB + 512 + MiB, "must be between"),
        (32 * MiB + 1024, "must be a multiple of MiB"),
        (32 * MiB, "(33553920 in this case) must be a multiple of MiB"),
    ],
)
async def test_upload_size_rules(env: ArmEnv, size: int, fragment: str) -> None:
    with pytest.raises(HttpResponseError) as exc:
        await create_upload_disk(env, "bad-size", size)
    assert exc.value.status_code == 400
    assert error_code(exc.value) == "BadRequest"
    assert fragment in str(exc.value.message)
    with pytest.raises(ResourceNotFoundError):
        await env.compute.disks.get(RG, "bad-size")


async def test_upload_size_limits_are_inclusive(env: ArmEnv) -> None:
    smallest = await create_upload_disk(env, "smallest", 20 * MiB + 512)
    assert smallest.properties.disk_state == "ReadyToUpload"
    largest = await create_upload_disk(env, "largest", 32 * 1024 * 1024 * MiB + 512)
    assert largest.properties.disk_size_gb == 32 * 1024


async def test_missing_and_invalid_parameters(env: ArmEnv) -> None:
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_create_or_update(
            RG,
            "d",
            {"location": LOCATION, "properties": {"creationData": {"createOption": "Upload"}}},
        )
    assert error_code(exc.value) == "InvalidParameter"
    assert "uploadSizeBytes" in str(exc.value.message)
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_create_or_update(
            RG, "d", {"properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 4}}
        )
    assert error_code(exc.value) == "LocationRequired"
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_create_or_update(
            RG,
            "d",
            {
                "location": LOCATION,
                "properties": {
                    "hyperVGeneration": "V3",
                    "creationData": {"createOption": "Empty"},
                    "diskSizeGB": 4,
                },
            },
        )
    assert error_code(exc.value) == "InvalidParameter"


def _bad_cookie() -> bytes:
    return b"notavhd!" + fixed_vhd_footer(32 * MiB)[8:]


def _bad_checksum() -> bytes:
    footer = bytearray(fixed_vhd_footer(32 * MiB))
    footer[64:68] = struct.pack(">I", (struct.unpack(">I", footer[64:68])[0] + 1) & 0xFFFFFFFF)
    return bytes(footer)


@pytest.mark.parametrize(
    ("footer", "fragment"),
    [
        (_bad_cookie, "Disk is expected to have cookie value 'conectix'"),
        (lambda: bytes(512), "Disk is expected to have cookie value 'conectix'"),
        (_bad_checksum, "checksum"),
        (lambda: _footer_with(32 * MiB, disk_type=DISK_TYPE_DYNAMIC), "only fixed VHDs"),
        (lambda: fixed_vhd_footer(16 * MiB), "for the VHD footer"),
        (
            lambda: _footer_with(32 * MiB, current_size=32 * MiB - 512),
            "for the VHD footer",
        ),
    ],
    ids=["cookie", "nothing-uploaded", "checksum", "dynamic", "size-mismatch", "not-whole-mib"],
)
async def test_bad_vhd_fails_at_revoke(env: ArmEnv, footer: Any, fragment: str) -> None:
    sas = await upload_disk(env, "bad", footer=footer(), revoke=False)
    with pytest.raises(HttpResponseError) as exc:
        poller = await env.compute.disks.begin_revoke_access(RG, "bad")
        await poller.result()
    assert error_code(exc.value) == "InvalidVhd"
    assert fragment in str(exc.value.message)
    # Azure keeps the disk in ActiveUpload with its SAS: fix the footer and revoke again.
    assert (await env.compute.disks.get(RG, "bad")).properties.disk_state == "ActiveUpload"
    await write_pages(sas, 32 * MiB, fixed_vhd_footer(32 * MiB))
    poller = await env.compute.disks.begin_revoke_access(RG, "bad")
    await poller.result()
    assert (await env.compute.disks.get(RG, "bad")).properties.disk_state == "Unattached"
    failed = [e for e in env.sim.log() if e.kind == "operation" and e.outcome == "Failed"]
    assert [(e.operation, e.error_code) for e in failed] == [("disks/endGetAccess", "InvalidVhd")]


async def test_grant_access_rules(env: ArmEnv) -> None:
    await create_upload_disk(env, "upload", 32 * MiB + 512)
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_grant_access(
            RG, "upload", {"access": "Read", "durationInSeconds": 60}
        )
    assert exc.value.status_code == 409 and error_code(exc.value) == "OperationNotAllowed"
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_grant_access(
            RG, "upload", {"access": "Write", "durationInSeconds": 0}
        )
    assert error_code(exc.value) == "InvalidParameter"
    with pytest.raises(ResourceNotFoundError) as missing:
        await env.compute.disks.begin_grant_access(
            RG, "nope", {"access": "Write", "durationInSeconds": 60}
        )
    assert error_code(missing.value) == "ResourceNotFound"
    assert "Microsoft.Compute/disks/nope" in str(missing.value.message)

    poller = await env.compute.disks.begin_create_or_update(
        RG,
        "empty",
        {
            "location": LOCATION,
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
        },
    )
    assert (await poller.result()).properties.disk_state == "Unattached"
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_grant_access(
            RG, "empty", {"access": "Write", "durationInSeconds": 60}
        )
    assert error_code(exc.value) == "OperationNotAllowed"


async def test_read_grant_exports_a_fixed_vhd(env: ArmEnv) -> None:
    poller = await env.compute.disks.begin_create_or_update(
        RG,
        "data",
        {
            "location": LOCATION,
            "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 2},
        },
    )
    await poller.result()
    poller = await env.compute.disks.begin_grant_access(
        RG, "data", {"access": "Read", "durationInSeconds": 300}
    )
    sas = (await poller.result()).access_sas
    assert (await env.compute.disks.get(RG, "data")).properties.disk_state == "ActiveSAS"
    footer, size = await read_tail(sas)
    assert size == 2 * 1024 * MiB + 512
    assert VhdFooter.parse(footer).current_size == 2 * 1024 * MiB
    with pytest.raises(HttpResponseError) as exc:
        await write_pages(sas, 0, b"\0" * 512)
    assert exc.value.status_code == 403
    poller = await env.compute.disks.begin_revoke_access(RG, "data")
    await poller.result()
    assert (await env.compute.disks.get(RG, "data")).properties.disk_state == "Unattached"


async def test_import_disk(env: ArmEnv) -> None:
    size = 24 * MiB
    async with BlobServiceClient.from_connection_string(env.azurite.connection_string) as service:
        container = service.get_container_client("imports")
        await container.create_container()
        try:
            good = container.get_blob_client("good.vhd")
            await good.create_page_blob(size + 512)
            await good.upload_page(b"\x11" * 512, offset=0, length=512)
            await good.upload_page(fixed_vhd_footer(size), offset=size, length=512)
            bad = container.get_blob_client("bad.vhd")
            await bad.create_page_blob(size + 512)
            block = container.get_blob_client("block.vhd")
            await block.upload_blob(b"x" * 1024)
            base = f"{env.gateway.account_url}/imports"

            async def import_disk(name: str, uri: str, account: str | None = None) -> Any:
                poller = await env.compute.disks.begin_create_or_update(
                    RG,
                    name,
                    {
                        "location": LOCATION,
                        "properties": {
                            "osType": "Windows",
                            "creationData": {
                                "createOption": "Import",
                                "sourceUri": uri,
                                "storageAccountId": account or env.sim.storage_account_id,
                            },
                        },
                    },
                )
                return await poller.result()

            disk = await import_disk("imported", f"{base}/good.vhd")
            assert disk.properties.disk_state == "Unattached"
            assert disk.properties.disk_size_bytes == size
            assert disk.properties.creation_data.source_uri == f"{base}/good.vhd"
            # The disk holds a copy: export it and compare.
            poller = await env.compute.disks.begin_grant_access(
                RG, "imported", {"access": "Read", "durationInSeconds": 60}
            )
            sas = (await poller.result()).access_sas
            async with BlobClient.from_blob_url(sas) as exported:
                first = await (await exported.download_blob(offset=0, length=512)).readall()
            assert first == b"\x11" * 512

            with pytest.raises(HttpResponseError) as exc:
                await import_disk("bad", f"{base}/bad.vhd")
            assert error_code(exc.value) == "InvalidVhd"
            assert env.sim.state().disk("bad").provisioning_state == "Failed"
            for uri, account in [
                (f"{base}/missing.vhd", None),
                (f"{base}/block.vhd", None),
                ("https://elsewhere.example/c/b.vhd", None),
                (
                    f"{base}/good.vhd",
                    "/subscriptions/x/resourceGroups/y/providers/"
                    "Microsoft.Storage/storageAccounts/other",
                ),
            ]:
                with pytest.raises(HttpResponseError) as exc:
                    await import_disk("nope", uri, account)
                assert exc.value.status_code == 400, uri
                assert error_code(exc.value) == "InvalidParameter"
        finally:
            await container.delete_container()


async def test_delete_disk(env: ArmEnv) -> None:
    await upload_disk(env, "gone")
    poller = await env.compute.disks.begin_delete(RG, "gone")
    await poller.result()
    with pytest.raises(ResourceNotFoundError):
        await env.compute.disks.get(RG, "gone")
    # Deleting what does not exist succeeds (204).
    poller = await env.compute.disks.begin_delete(RG, "gone")
    await poller.result()
    deletes = [e.status for e in env.sim.log() if e.operation == "disks/delete"]
    assert deletes == [202, None, 204]  # accepted, the operation's end, nothing to delete
    # An active SAS must be revoked first.
    await upload_disk(env, "busy", revoke=False)
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_delete(RG, "busy")
    assert exc.value.status_code == 409 and error_code(exc.value) == "OperationNotAllowed"


async def test_disk_update_rules(env: ArmEnv) -> None:
    sas = await upload_disk(env, "disk", generation="V1", revoke=False)
    await write_pages(sas, 0, b"\x42" * 512)
    poller = await env.compute.disks.begin_revoke_access(RG, "disk")
    await poller.result()
    poller = await env.compute.disks.begin_update(RG, "disk", {"tags": {"restored": "yes"}})
    assert (await poller.result()).tags == {"restored": "yes"}
    poller = await env.compute.disks.begin_update(RG, "disk", {"properties": {"diskSizeGB": 4}})
    updated = await poller.result()
    assert updated.properties.disk_size_gb == 4
    # Growing keeps the data; an export is a fixed VHD of the new size.
    poller = await env.compute.disks.begin_grant_access(
        RG, "disk", {"access": "Read", "durationInSeconds": 60}
    )
    export = (await poller.result()).access_sas
    footer, size = await read_tail(export)
    assert size == 4 * 1024 * MiB + 512 and VhdFooter.parse(footer).current_size == size - 512
    async with BlobClient.from_blob_url(export) as blob:
        first = await (await blob.download_blob(offset=0, length=1024)).readall()
        old_footer = await (await blob.download_blob(offset=32 * MiB, length=512)).readall()
    assert first == b"\x42" * 512 + bytes(512)
    assert old_footer == bytes(512)
    poller = await env.compute.disks.begin_revoke_access(RG, "disk")
    await poller.result()
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_update(RG, "disk", {"properties": {"diskSizeGB": 1}})
    assert error_code(exc.value) == "OperationNotAllowed"
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_create_or_update(
            RG,
            "disk",
            {
                "location": LOCATION,
                "properties": {
                    "hyperVGeneration": "V2",
                    "creationData": {"createOption": "Upload", "uploadSizeBytes": 32 * MiB + 512},
                },
            },
        )
    assert exc.value.status_code == 409 and error_code(exc.value) == "PropertyChangeNotAllowed"
    listed = [d.name async for d in env.compute.disks.list_by_resource_group(RG)]
    assert listed == ["disk"]
    assert [d.name async for d in env.compute.disks.list()] == ["disk"]


async def test_conflicting_disk_operations(azurite: AzuriteProcess) -> None:
    async with arm_env(azurite, durations={"disks/beginGetAccess": 100}) as env:
        await create_upload_disk(env, "slow", 32 * MiB + 512)
        poller = await env.compute.disks.begin_grant_access(
            RG, "slow", {"access": "Write", "durationInSeconds": 60}
        )
        with pytest.raises(HttpResponseError) as exc:
            await env.compute.disks.begin_revoke_access(RG, "slow")
        assert exc.value.status_code == 409 and error_code(exc.value) == "Conflict"
        assert (await poller.result()).access_sas


# -- long-running operations and faults -------------------------------------------------------


async def test_throttled_poll_is_retried(azurite: AzuriteProcess) -> None:
    rules = [ArmFaultRule.from_spec("operations/poll:status=429,retry_after=0.05,nth=1")]
    async with arm_env(azurite, rules=rules) as env:
        disk = await create_upload_disk(env, "d", 32 * MiB + 512)
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
        assert (await env.compute.disks.get(RG, "d")).properties.disk_state == "ReadyToUpload"
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


# -- authentication, state endpoint -----------------------------------------------------------


async def test_requests_need_a_bearer_token(env: ArmEnv) -> None:
    context = ssl.create_default_context(cafile=env.sim.ca_bundle)
    url = f"{env.sim.endpoint}/subscriptions/s/resourceGroups/{RG}/providers/Microsoft.Compute"
    url += "/disks/d"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, params={"api-version": "2024-03-02"}, ssl=context) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
            assert (await response.json())["error"]["code"] == "AuthenticationFailed"
        headers = {"Authorization": "Bearer anything"}
        async with session.get(url, headers=headers, ssl=context) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "MissingApiVersionParameter"
        async with session.get(
            url, headers=headers, params={"api-version": "1999-01-01"}, ssl=context
        ) as response:
            assert response.status == 404
        async with session.get(f"{env.sim.endpoint}/_emulator/state", ssl=context) as response:
            state = await response.json()
            assert set(state) >= {"disks", "virtual_machines", "run_commands", "operations"}
        async with session.put(
            f"{env.sim.endpoint}/_emulator/faults",
            data=json.dumps({"rules": ["disks/read:status=503"]}),
            ssl=context,
        ) as response:
            assert response.status == 200
    assert env.sim.rules == (ArmFaultRule(operation="disks/read", status=503),)
    logged = [e for e in env.sim.log() if e.kind == "request"]
    assert [e.status for e in logged] == [401, 400, 404]
    assert logged[2].api_version == "1999-01-01"


async def test_sdk_with_any_token_and_api_version(env: ArmEnv) -> None:
    options: dict[str, Any] = {
        "base_url": env.sim.endpoint,
        "connection_verify": env.sim.ca_bundle,
    }
    async with ComputeManagementClient(StaticToken("other"), "another-sub", **options) as client:
        poller = await client.disks.begin_create_or_update(
            "rg2",
            "x",
            {
                "location": LOCATION,
                "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
            },
            api_version="2023-04-02",
        )
        disk = await poller.result()
    assert disk.id.startswith("/subscriptions/another-sub/resourceGroups/rg2/")
    assert {e.api_version for e in env.sim.log() if e.kind == "request"} == {"2023-04-02"}


# -- the bundle -------------------------------------------------------------------------------


async def test_emulator_bundle() -> None:
    try:
        find_azurite()
    except EmulatorError as missing:
        pytest.skip(str(missing))
    async with Emulator(time_factor=0.01) as emulator:
        info = emulator.info()
        env = info["env"]
        assert info["arm_endpoint"].startswith("https://127.0.0.1:")
        assert env["AZRESTORE_ARM_ENDPOINT"] == info["arm_endpoint"]
        assert env["AZRESTORE_CA_BUNDLE"] == info["ca_bundle"]
        assert env["AZURE_SUBSCRIPTION_ID"] == info["subscription_id"]
        assert info["blob_endpoint"] in env["AZURE_STORAGE_CONNECTION_STRING"]
        assert info["storage_account_id"].endswith("/storageAccounts/devstoreaccount1")
        azurite = emulator.azurite
        async with ComputeManagementClient(
            StaticToken(env["AZRESTORE_ARM_TOKEN"]),
            env["AZURE_SUBSCRIPTION_ID"],
            base_url=env["AZRESTORE_ARM_ENDPOINT"],
            connection_verify=env["AZRESTORE_CA_BUNDLE"],
        ) as compute:
            poller = await compute.disks.begin_create_or_update(
                "rg",
                "d",
                {
                    "location": LOCATION,
                    "properties": {
                        "creationData": {
                            "createOption": "Upload",
                            "uploadSizeBytes": 32 * MiB + 512,
                        }
                    },
                },
            )
            await poller.result()
            poller = await compute.disks.begin_grant_access(
                "rg", "d", {"access": "Write", "durationInSeconds": 60}
            )
            sas = (await poller.result()).access_sas
            assert sas.startswith(info["blob_endpoint"])
            await write_pages(sas, 32 * MiB, fixed_vhd_footer(32 * MiB))
            poller = await compute.disks.begin_revoke_access("rg", "d")
            await poller.result()
            assert emulator.arm.state().disk("d").disk_state == "Unattached"
            # The gateway (on the emulator's loop) now refuses the revoked SAS.
            with pytest.raises(HttpResponseError) as exc:
                await read_tail(sas)
            assert exc.value.error_code == "AuthenticationFailed"
    assert not azurite.running
    with pytest.raises(RuntimeError):
        emulator.info()
