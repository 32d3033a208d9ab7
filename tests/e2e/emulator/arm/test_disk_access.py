"""Access to a disk's blob: the VHD footer checks when an upload's access is revoked,
the rules of grants, and a Read grant exporting a fixed VHD."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import types as compute_types

from azrestore.formats.sizes import MiB
from azrestore.formats.vhd import DISK_TYPE_DYNAMIC, VhdFooter, fixed_vhd_footer
from tests.support.arm.bodies import request_body
from tests.support.arm.disks import (
    create_upload_disk,
    disk_state,
    footer_with,
    read_tail,
    upload_disk,
    write_pages,
)
from tests.support.arm.env import LOCATION, RG, ArmEnv, error_code

pytestmark = pytest.mark.anyio


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
        (lambda: footer_with(32 * MiB, disk_type=DISK_TYPE_DYNAMIC), "only fixed VHDs"),
        (lambda: fixed_vhd_footer(16 * MiB), "for the VHD footer"),
        (
            lambda: footer_with(32 * MiB, current_size=32 * MiB - 512),
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
    assert await disk_state(env, "bad") == "ActiveUpload"
    await write_pages(sas, 32 * MiB, fixed_vhd_footer(32 * MiB))
    poller = await env.compute.disks.begin_revoke_access(RG, "bad")
    await poller.result()
    assert await disk_state(env, "bad") == "Unattached"
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
        request_body(
            compute_types.Disk,
            {
                "location": LOCATION,
                "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 1},
            },
        ),
    )
    empty = await poller.result()
    assert empty.properties is not None
    assert empty.properties.disk_state == "Unattached"
    with pytest.raises(HttpResponseError) as exc:
        await env.compute.disks.begin_grant_access(
            RG, "empty", {"access": "Write", "durationInSeconds": 60}
        )
    assert error_code(exc.value) == "OperationNotAllowed"


async def test_read_grant_exports_a_fixed_vhd(env: ArmEnv) -> None:
    create = await env.compute.disks.begin_create_or_update(
        RG,
        "data",
        request_body(
            compute_types.Disk,
            {
                "location": LOCATION,
                "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 2},
            },
        ),
    )
    await create.result()
    grant = await env.compute.disks.begin_grant_access(
        RG, "data", {"access": "Read", "durationInSeconds": 300}
    )
    sas = (await grant.result()).access_sas
    assert sas is not None
    assert await disk_state(env, "data") == "ActiveSAS"
    footer, size = await read_tail(sas)
    assert size == 2 * 1024 * MiB + 512
    assert VhdFooter.parse(footer).current_size == 2 * 1024 * MiB
    with pytest.raises(HttpResponseError) as exc:
        await write_pages(sas, 0, b"\0" * 512)
    assert exc.value.status_code == 403
    revoke = await env.compute.disks.begin_revoke_access(RG, "data")
    await revoke.result()
    assert await disk_state(env, "data") == "Unattached"
