"""Deleting and updating disks, and disk operations that conflict."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import types as compute_types
from azure.storage.blob.aio import BlobClient

from azrestore.emulator.azurite import AzuriteProcess
from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import VhdFooter
from tests.support.arm.bodies import request_body
from tests.support.arm.disks import (
    create_upload_disk,
    read_tail,
    upload_disk,
    write_pages,
)
from tests.support.arm.env import LOCATION, RG, ArmEnv, arm_env, error_code

pytestmark = pytest.mark.anyio


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
    revoke = await env.compute.disks.begin_revoke_access(RG, "disk")
    await revoke.result()
    update = await env.compute.disks.begin_update(RG, "disk", {"tags": {"restored": "yes"}})
    assert (await update.result()).tags == {"restored": "yes"}
    update = await env.compute.disks.begin_update(RG, "disk", {"properties": {"diskSizeGB": 4}})
    updated = await update.result()
    assert updated.properties is not None
    assert updated.properties.disk_size_gb == 4
    # Growing keeps the data; an export is a fixed VHD of the new size.
    grant = await env.compute.disks.begin_grant_access(
        RG, "disk", {"access": "Read", "durationInSeconds": 60}
    )
    export = (await grant.result()).access_sas
    assert export is not None
    footer, size = await read_tail(export)
    assert size == 4 * 1024 * MiB + 512 and VhdFooter.parse(footer).current_size == size - 512
    async with BlobClient.from_blob_url(export) as blob:
        first = await (await blob.download_blob(offset=0, length=1024)).readall()
        old_footer = await (await blob.download_blob(offset=32 * MiB, length=512)).readall()
    assert first == b"\x42" * 512 + bytes(512)
    assert old_footer == bytes(512)
    revoke = await env.compute.disks.begin_revoke_access(RG, "disk")
    await revoke.result()
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_update(RG, "disk", {"properties": {"diskSizeGB": 1}})
    assert error_code(exc.value) == "OperationNotAllowed"
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_create_or_update(
            RG,
            "disk",
            request_body(
                compute_types.Disk,
                {
                    "location": LOCATION,
                    "properties": {
                        "hyperVGeneration": "V2",
                        "creationData": {
                            "createOption": "Upload",
                            "uploadSizeBytes": 32 * MiB + 512,
                        },
                    },
                },
            ),
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
