"""Creating managed disks through the real azure-mgmt-compute aio client: the Upload
lifecycle, Azure's upload size rules and the parameter checks of a create."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.polling import AsyncLROPoller
from azure.mgmt.compute import types as compute_types
from azure.storage.blob.aio import BlobClient

from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import fixed_vhd_footer
from tests.support.arm.bodies import request_body
from tests.support.arm.disks import (
    create_upload_disk,
    disk_state,
    read_tail,
    write_pages,
)
from tests.support.arm.env import LOCATION, RG, ArmEnv, error_code

pytestmark = pytest.mark.anyio


async def test_upload_disk_lifecycle(env: ArmEnv) -> None:
    size = 32 * MiB + 512
    create = await env.compute.disks.begin_create_or_update(
        RG,
        "restored-os",
        request_body(
            compute_types.Disk,
            {
                "location": LOCATION,
                "tags": {"source": "backup-1"},
                "properties": {
                    "osType": "Linux",
                    "hyperVGeneration": "V2",
                    "creationData": {"createOption": "Upload", "uploadSizeBytes": size},
                },
            },
        ),
    )
    disk = await create.result()
    assert disk.properties is not None and disk.properties.creation_data is not None
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

    grant = await env.compute.disks.begin_grant_access(
        RG, "restored-os", {"access": "Write", "durationInSeconds": 600}
    )
    access = await grant.result()
    assert access.access_sas is not None
    assert access.access_sas.startswith(env.gateway.account_url + "/")
    assert await disk_state(env, "restored-os") == "ActiveUpload"

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
        # azure-storage sets error_code on its errors; azure-core's class does not declare it.
        assert refused.value.error_code == "AuthorizationPermissionMismatch"  # type: ignore[attr-defined]

    # Typed as object: its result is None, and that is what the test checks.
    revoke: AsyncLROPoller[object] = await env.compute.disks.begin_revoke_access(RG, "restored-os")
    assert await revoke.result() is None
    disk = await env.compute.disks.get(RG, "restored-os")
    assert disk.properties is not None
    assert disk.properties.disk_state == "Unattached"

    # After revoke the SAS no longer works.
    with pytest.raises(HttpResponseError) as revoked:
        await read_tail(access.access_sas)
    assert revoked.value.status_code == 403
    assert revoked.value.error_code == "AuthenticationFailed"  # type: ignore[attr-defined]

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
    assert smallest.properties is not None
    assert smallest.properties.disk_state == "ReadyToUpload"
    # Azure's bound, 35,183,298,347,520 bytes: 32,767 GiB + 512 ("32 TiB" in its message).
    largest = await create_upload_disk(env, "largest", 32_767 * 1024 * MiB + 512)
    assert largest.properties is not None
    assert largest.properties.disk_size_gb == 32_767
    with pytest.raises(HttpResponseError):
        await create_upload_disk(env, "too-large", 32 * 1024 * 1024 * MiB + 512)


async def _refused(env: ArmEnv, disk: dict[str, Any]) -> pytest.ExceptionInfo[HttpResponseError]:
    """The error that creating the disk "d" as ``disk`` describes ends in."""
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_create_or_update(
            RG, "d", request_body(compute_types.Disk, disk)
        )
    return exc


async def test_missing_and_invalid_parameters(env: ArmEnv) -> None:
    exc = await _refused(
        env,
        {"location": LOCATION, "properties": {"creationData": {"createOption": "Upload"}}},
    )
    assert error_code(exc.value) == "InvalidParameter"
    assert "uploadSizeBytes" in str(exc.value.message)
    exc = await _refused(
        env,
        {"properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 4}},
    )
    assert error_code(exc.value) == "LocationRequired"
    exc = await _refused(
        env,
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
