"""A Windows disk prepared for real from a Linux helper of the emulator: a Windows-shaped
MBR disk (NTFS, SYSTEM and SOFTWARE hives made with hivexsh) uploaded as a managed disk,
attached to a helper made from a marketplace image, and ``prepare-windows-offline.sh`` run
on it through Run Command (azure-mgmt-compute's aio client) in the emulator's guest
sandbox. The disk is then read back from storage (azure-storage-blob, straight from
Azurite) and judged with ntfs-3g (read-only) and hivexget, not azrestore's code; a Windows
VM made from it gets its agent Ready by the emulator's own inspection. A disk without
Windows fails the run command as Azure reports it; a Linux disk booted as Windows gets no
agent."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob.aio import BlobServiceClient

from azrestore.emulator.azurite import AzuriteProcess
from azrestore.formats.sizes import MiB
from azrestore.restore.scripts import RESULT_PREFIX, linux_prepare_command, windows_offline_command
from tests.support.arm.disks import upload_disk, write_pages
from tests.support.arm.env import RG, ArmEnv, arm_env, error_code
from tests.support.arm.network import make_network
from tests.support.arm.vms import (
    create_vm,
    run_command,
    set_data_disks,
    vm_attach,
    vm_from_image,
    wait_for_agent,
)
from tests.support.guestimages import linux_disk, require_sandbox
from tests.support.tools import require
from tests.support.windisk import TOOLS, mbr_disk, windows_files
from tests.support.winread import FIRST_BOOT_CMDLINE, examine_prepared

pytestmark = pytest.mark.anyio

_FOOTER = 512


@pytest.fixture
async def env(azurite: AzuriteProcess) -> AsyncIterator[ArmEnv]:
    require_sandbox()
    require(*TOOLS, "ntfscat")
    async with arm_env(azurite, scripts="run") as environment:
        yield environment


async def _upload(env: ArmEnv, name: str, image: Path, generation: str = "V1") -> str:
    """``image`` as a Windows managed disk (Upload, its pages through the write SAS)."""
    data = await anyio.Path(image).read_bytes()
    sas = await upload_disk(
        env, name, virtual_size=len(data), os_type="Windows", generation=generation, revoke=False
    )
    for offset in range(0, len(data), MiB):
        chunk = data[offset : offset + MiB]
        if chunk.count(0) != len(chunk):
            await write_pages(sas, offset, chunk)
    await (await env.compute.disks.begin_revoke_access(RG, name)).result()
    disk = await env.compute.disks.get(RG, name)
    return str(disk.id)


async def _blob(env: ArmEnv, name: str) -> bytes:
    """The managed disk's page blob, footer and all, read straight from Azurite."""
    path = env.sim.state().disk(name).blob_path
    assert path is not None
    container, blob = path.strip("/").split("/", 1)
    async with BlobServiceClient.from_connection_string(env.azurite.connection_string) as service:
        stream = await service.get_blob_client(container, blob).download_blob()
        return await stream.readall()


def _result(message: str) -> dict[str, Any]:
    """The script's AZRESTORE-RESULT object in a Run Command message (its last one)."""
    lines = [line for line in message.splitlines() if line.startswith(RESULT_PREFIX)]
    assert lines, message
    value: dict[str, Any] = json.loads(lines[-1].removeprefix(RESULT_PREFIX))
    return value


async def _run(env: ArmEnv, lun: int) -> tuple[str, float]:
    """prepare-windows-offline.sh on the helper for LUN ``lun``: the message, seconds."""
    spec = windows_offline_command(lun)
    started = time.monotonic()
    result = await run_command(
        env,
        "helper",
        list(spec.script),
        command_id=spec.command_id,
        parameters=[{"name": p.name, "value": p.value} for p in spec.parameters],
    )
    seconds = time.monotonic() - started
    assert [v.code for v in result.value] == ["ProvisioningState/succeeded"]
    message: str = result.value[0].message
    return message, seconds


async def test_a_windows_disk_is_prepared_for_real_by_a_linux_helper(
    env: ArmEnv, tmp_path: Path
) -> None:
    image = mbr_disk(tmp_path, windows_files(tmp_path))
    disk_id = await _upload(env, "win01-osdisk", image)
    before = await _blob(env, "win01-osdisk")
    _, nic = await make_network(env, "helper-nic")
    await create_vm(env, "helper", vm_from_image(nic.id))
    await set_data_disks(env, "helper", [disk_id])

    message, first_seconds = await _run(env, 0)
    result = _result(message)
    assert result["ok"] is True and result["error"] == "", message
    assert result["windows"] == "Windows Server 2019 Datacenter (build 17763)"
    assert result["agent"] == "first_boot" and result["warnings"] == []
    # Azure's shape: both streams, each cut to its last 4096 bytes.
    stdout = message.removeprefix("Enable succeeded: \n[stdout]\n").removesuffix("\n[stderr]\n")
    assert message.endswith("\n[stderr]\n") and len(stdout.encode()) <= 4096, message
    assert "summary: 31 change(s), 0 warning(s)" in stdout
    state = env.sim.state()
    assert state.run_commands[-1].ran and state.run_commands[-1].exit_code == 0
    mark = state.disk("win01-osdisk").prepared
    assert mark is not None and any(e.startswith("Windows on ") for e in mark.evidence), mark
    assert "RDP: fDenyTSConnections = 0" in mark.evidence, mark
    assert any("startup script in the SOFTWARE hive" in e for e in mark.evidence), mark

    prepared = await _blob(env, "win01-osdisk")
    assert prepared != before and prepared[-_FOOTER:] == before[-_FOOTER:]
    found = await anyio.to_thread.run_sync(examine_prepared, prepared, tmp_path)
    assert found["fDenyTSConnections"] == "0" and found["policy"] == "0"
    assert found["PortNumber"] == "3389"
    assert found["SanPolicy"] == "1" and found["RealTimeIsUniversal"] == "1"
    for rule in ("rdp-tcp", "rdp-udp", "winrm"):
        assert "|Action=Allow|Active=TRUE|Dir=In|" in found[rule], found[rule]
    assert "|LPort=3389|" in found["rdp-tcp"] and "|LPort=5985|" in found["winrm"]
    assert found["startup"] == FIRST_BOOT_CMDLINE
    assert found["installer"].startswith("@echo off\r\n") and "msiexec.exe" in found["installer"]

    # Again: nothing to change, not one byte of the disk written.
    message, second_seconds = await _run(env, 0)
    again = _result(message)
    assert again["ok"] is True and again["changes"] == [] and again["warnings"] == []
    assert await _blob(env, "win01-osdisk") == prepared
    assert env.sim.state().disk("win01-osdisk").prepared is not None

    # A Windows VM from the disk: its agent reports Ready (the emulator judged the disk).
    await set_data_disks(env, "helper", [])
    _, target_nic = await make_network(env, "win01-nic")
    await create_vm(env, "win01", vm_attach(target_nic.id, disk_id))
    assert env.sim.state().vm("win01").os_type == "Windows"
    assert await wait_for_agent(env, "win01", within=10.0) == "Ready"
    print(f"windows preparation: {first_seconds:.2f} s, again {second_seconds:.2f} s")


async def test_a_disk_without_windows_fails_the_run_command(env: ArmEnv, tmp_path: Path) -> None:
    image = mbr_disk(tmp_path, {"Users/readme.txt": b"no Windows here"})
    disk_id = await _upload(env, "empty-osdisk", image)
    before = await _blob(env, "empty-osdisk")
    _, nic = await make_network(env, "helper-nic")
    await create_vm(env, "helper", vm_from_image(nic.id))
    await set_data_disks(env, "helper", [disk_id])
    with pytest.raises(HttpResponseError) as failed:
        await _run(env, 0)
    assert error_code(failed.value) == "VMExtensionProvisioningError"
    text = str(failed.value)
    assert "RunCommandLinux" in text and "exit status=1" in text, text
    assert "[stderr]\nerror: no Windows installation" in text, text
    assert '"ok":false' in text, text
    record = env.sim.state().run_commands[-1]
    assert record.ran and record.exit_code == 1
    assert record.stderr.startswith("error: no Windows installation"), record.stderr
    assert env.sim.state().disk("empty-osdisk").prepared is None
    assert await _blob(env, "empty-osdisk") == before
    await set_data_disks(env, "helper", [])
    _, target_nic = await make_network(env, "empty-nic")
    await create_vm(env, "empty01", vm_attach(target_nic.id, disk_id))
    assert await wait_for_agent(env, "empty01", within=1.0) == "Not Ready"


async def test_a_linux_disk_prepared_gives_a_windows_vm_no_agent(
    env: ArmEnv, tmp_path: Path
) -> None:
    """The emulator's inspection found Linux on the disk: a VM that boots it as Windows
    gets no agent, whatever the disk's osType says."""
    disk_id = await _upload(
        env, "mislabelled-osdisk", linux_disk(tmp_path, "linux.raw", agent=True), "V2"
    )
    _, nic = await make_network(env, "helper-nic")
    await create_vm(env, "helper", vm_from_image(nic.id))
    await set_data_disks(env, "helper", [disk_id])
    spec = linux_prepare_command(0)
    await run_command(
        env,
        "helper",
        list(spec.script),
        parameters=[{"name": p.name, "value": p.value} for p in spec.parameters],
    )
    mark = env.sim.state().disk("mislabelled-osdisk").prepared
    assert mark is not None and mark.os == "Linux", mark
    await set_data_disks(env, "helper", [])
    _, target_nic = await make_network(env, "mislabelled-nic")
    await create_vm(env, "mislabelled", vm_attach(target_nic.id, disk_id))
    assert env.sim.state().vm("mislabelled").os_type == "Windows"
    assert await wait_for_agent(env, "mislabelled", within=1.0) == "Not Ready"
