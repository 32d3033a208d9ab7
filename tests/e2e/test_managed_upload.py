"""Managed-disk direct upload against the emulator: as one command (``--to-disk``) and
step by step through the SDK (create, grant, ``upload --existing``, revoke)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from azrestore.emulator import Emulator
from azrestore.emulator.storage import FaultRule
from azrestore.formats.sizes import MiB
from tests.support.compute import compute_client
from tests.support.disks import mkfs, needs_tools, new_disk, put, sfdisk
from tests.support.images import make_sparse_image

pytestmark = pytest.mark.anyio
SUB = "00000000-0000-0000-0000-000000000000"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute"
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(time_factor=0.002) as local_azure:
        yield local_azure


async def azrestore(emulator: Emulator, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, **{k: str(v) for k, v in emulator.info()["env"].items()}}
    return await anyio.run_process(
        [sys.executable, "-m", "azrestore.cli.app", *args], env=env, check=False
    )


@needs_tools
async def test_to_disk_one_command(emulator: Emulator, tmp_path: Path) -> None:
    image = new_disk(tmp_path, 64 * MiB + 4096, "uefi.raw")
    sfdisk(image, f"label: gpt\nstart=2048, size=16M, type={ESP}\ntype={LINUX_FS}\n")
    put(image, MiB, mkfs(tmp_path, "vfat", 16 * MiB))
    put(image, 17 * MiB, mkfs(tmp_path, "ext4", 40 * MiB))
    disk_id = f"{GROUP}/disks/web01-os"
    done = await azrestore(
        emulator, "upload", str(image), "--to-disk", disk_id, "--location", "westeurope", "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["disk_id"] == disk_id and result["disk_state"] == "Unattached"
    assert (result["os_type"], result["hyper_v_generation"]) == ("Linux", "V2")
    assert "sig=" not in result["url"].replace("sig=REDACTED", "")
    disk = emulator.arm.state().disk("web01-os")
    assert disk.upload_size_bytes == 65 * MiB + 512
    assert (disk.os_type, disk.hyper_v_generation, disk.disk_state) == ("Linux", "V2", "Unattached")
    # The same command again (as after a run killed once it had revoked access): its
    # journal says the upload is done; nothing is sent, no access granted.
    emulator.gateway.reset_statistics()
    before = len(emulator.arm.log(polls=False))
    again = await azrestore(
        emulator, "upload", str(image), "--to-disk", disk_id, "--location", "westeurope", "--json"
    )
    assert again.returncode == 0, again.stderr
    repeat = json.loads(again.stdout)
    assert repeat["bytes_uploaded"] == 0 and repeat["bytes_resumed"] == 65 * MiB + 512
    assert repeat["disk_state"] == "Unattached"
    assert emulator.gateway.statistics().requests.get("PutPage", 0) == 0
    log = emulator.arm.log(polls=False)[before:]
    assert {e.operation for e in log if e.kind == "request"} <= {"disks/read"}
    # An existing disk is not overwritten by another image.
    put(image, 20 * MiB, b"changed")
    other = await azrestore(
        emulator, "upload", str(image), "--to-disk", disk_id, "--location", "westeurope"
    )
    assert other.returncode == 2
    assert b"already exists" in other.stderr


async def test_step_by_step_through_the_sdk(emulator: Emulator, tmp_path: Path) -> None:
    image = make_sparse_image(
        tmp_path / "data.raw", 30 * MiB + 1000, [(0, os.urandom(9000)), (29 * MiB, b"end")]
    )
    async with compute_client(emulator) as compute:
        body = {
            "location": "westeurope",
            "properties": {
                "creationData": {"createOption": "Upload", "uploadSizeBytes": 31 * MiB + 512}
            },
        }
        await (await compute.disks.begin_create_or_update("rg", "data1", body)).result()  # type: ignore[call-overload]
        grant = {"access": "Write", "durationInSeconds": 3600}
        access = await (await compute.disks.begin_grant_access("rg", "data1", grant)).result()  # type: ignore[call-overload]
        assert emulator.arm.state().disk("data1").disk_state == "ActiveUpload"
        done = await azrestore(
            emulator, "upload", str(image), "--to", access.access_sas, "--existing", "--json"
        )
        assert done.returncode == 0, done.stderr
        await (await compute.disks.begin_revoke_access("rg", "data1")).result()
        assert emulator.arm.state().disk("data1").disk_state == "Unattached"


async def test_access_is_revoked_when_the_upload_fails(emulator: Emulator, tmp_path: Path) -> None:
    image = make_sparse_image(tmp_path / "disk.raw", 24 * MiB, [(0, os.urandom(24 * MiB))])
    emulator.gateway.set_rules(
        [FaultRule(operation="PutPage", status=403, code="AuthorizationPermissionMismatch", nth=3)]
    )
    done = await azrestore(
        emulator,
        "upload",
        str(image),
        "--to-disk",
        f"{GROUP}/disks/broken",
        "--location",
        "westeurope",
        "--os-type",
        "none",
    )
    assert done.returncode == 1
    stderr = done.stderr.decode()
    assert "AuthorizationPermissionMismatch" in stderr and "left in Azure" in stderr
    assert stderr.count("\n") == 1, stderr
    operations = [e.operation for e in emulator.arm.log(polls=False) if e.kind == "request"]
    assert "disks/endGetAccess" in operations  # revoke was attempted after the failure
