"""A batch of VMs with their root on LVM, prepared for real in one guest sandbox: VGs of the
same name on several disks at once (one disk a byte copy of another: the same PV and VG
UUIDs), and an LV the script must refuse without device-mapper (two segments). Each disk
read back from storage with debugfs at the byte range LVM's own tools gave; a second run
changes nothing."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from azrestore.emulator.arm.storage import DISK_BLOB, DiskStorage, StorageConfig
from azrestore.emulator.azurite import AzuriteProcess
from azrestore.emulator.guest.runner import AttachedDisk, run_guest_script
from azrestore.restore.batchscript import BatchJob, batch_command, parse_batch
from tests.support.guestimages import LvmDisk, debugfs, extract, lvm_disk, require_sandbox

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
FOOTER = b"conectix".ljust(512, b"\x01")


@pytest.fixture
async def storage(azurite: AzuriteProcess) -> AsyncIterator[DiskStorage]:
    require_sandbox()
    disks = DiskStorage(StorageConfig(azurite.account_url, azurite.account_url))
    await disks.open()
    try:
        yield disks
    finally:
        await disks.close()


async def _upload(storage: DiskStorage, name: str, image: Path) -> str:
    data = await anyio.Path(image).read_bytes()
    await storage.create_blob(name, len(data) + 512)
    blob = storage.service.get_blob_client(name, DISK_BLOB)
    for offset in range(0, len(data), MiB):
        chunk = data[offset : offset + MiB]
        if chunk.count(0) != len(chunk):
            await blob.upload_page(chunk, offset=offset, length=len(chunk))
    await storage.write_tail(name, len(data) + 512, FOOTER)
    return name


async def _lv_fs(storage: DiskStorage, blob_name: str, disk: LvmDisk, into: Path) -> Path:
    blob = storage.service.get_blob_client(blob_name, DISK_BLOB)
    data = await (
        await blob.download_blob(offset=0, length=disk.lv_offset + disk.lv_size)
    ).readall()
    into.with_suffix(".raw").write_bytes(data)
    return extract(into.with_suffix(".raw"), disk.lv_offset, disk.lv_size, into)


def _sandbox_loops() -> list[str]:
    """Loop devices over a guest's own device names (the LV mappings of a sandbox)."""
    listed = subprocess.run(
        ["losetup", "--list", "--noheadings", "-O", "NAME,BACK-FILE"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in listed.splitlines() if " /dev/sd" in line]


async def test_vms_whose_volume_groups_clash_are_prepared_in_one_batch(
    storage: DiskStorage, tmp_path: Path
) -> None:
    base = lvm_disk(tmp_path, "base.raw", vg="rootvg")
    clone = tmp_path / "clone.raw"
    shutil.copyfile(base.path, clone)
    layouts = {
        "base": base,
        "clone": LvmDisk(clone, base.lv_offset, base.lv_size),  # the same PV and VG UUIDs
        "other": lvm_disk(tmp_path, "other.raw", vg="rootvg"),  # the same VG name only
        "split": lvm_disk(tmp_path, "split.raw", vg="rootvg", split=True),
    }
    disks = [
        AttachedDisk(lun, vm, await _upload(storage, f"lvm-{vm}", disk.path))
        for lun, (vm, disk) in enumerate(layouts.items())
    ]
    before = _sandbox_loops()
    command = batch_command([BatchJob(disk.lun) for disk in disks])
    run = await run_guest_script(storage, disks, command.text, [])
    assert run.exit_code == 0, run.stderr
    results = parse_batch(run.stdout, len(disks))
    assert results is not None, run.stdout
    assert [result.ok for result in results] == [True, True, True, False], results
    refused = results[3]
    assert "no Linux root file system" in (refused.error or ""), refused
    assert "LV rootvg/root (linear, 2 segments" in refused.stderr_tail, refused
    assert "not one linear segment (no device-mapper)" in refused.stderr_tail, refused
    for vm in ("base", "clone", "other"):
        assert run.verdicts[vm].ready, run.verdicts[vm]
        assert "Linux on /dev/rootvg/root (ext4)" in run.verdicts[vm].evidence
        fs = await _lv_fs(storage, f"lvm-{vm}", layouts[vm], tmp_path / f"{vm}.fs")
        assert "console=ttyS0" in debugfs(fs, "cat /etc/default/grub"), vm
        wants = debugfs(fs, "ls -l /etc/systemd/system/multi-user.target.wants")
        assert "ssh.service" in wants and "walinuxagent" in wants, (vm, wants)
    # The refused LV's first segment holds a root file system: left as it was.
    assert not run.verdicts["split"].ready
    assert (run.written["split"].uploaded, run.written["split"].cleared) == (0, 0)
    fs = await _lv_fs(storage, "lvm-split", layouts["split"], tmp_path / "split.fs")
    assert "console=ttyS0" not in debugfs(fs, "cat /etc/default/grub")
    assert _sandbox_loops() == before

    # Again: the three prepared ones are found so, nothing changes; the split one still fails.
    again = await run_guest_script(storage, disks, command.text, [])
    results = parse_batch(again.stdout, len(disks))
    assert results is not None, again.stdout
    assert [(r.ok, r.changes) for r in results[:3]] == [(True, 0)] * 3, results
    assert not results[3].ok
    # (A read-write mount of ext4 writes its superblock: only the refused disk is untouched.)
    assert (again.written["split"].uploaded, again.written["split"].cleared) == (0, 0)
