"""The guest sandbox for real: a script run as root in a private mount namespace sees the
VM's data disks as block devices where Azure shows them; what it writes goes back to the
disk blobs in Azurite (only the chunks that changed); its exit status and output tails are
its own; nothing of it (mounts, loop devices, files) is left on the host."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from azrestore.emulator.arm.storage import DISK_BLOB, DiskStorage, StorageConfig
from azrestore.emulator.azurite import AzuriteProcess
from azrestore.emulator.guest.runner import AttachedDisk, run_guest_script
from azrestore.emulator.guest.sandbox import run_phase, write_devices
from tests.support.guestimages import (
    linux_disk,
    noise_disk,
    ntfs_disk,
    require_sandbox,
    windows_tree,
)

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


async def _disk(storage: DiskStorage, name: str, size: int, writes: dict[int, bytes]) -> str:
    await storage.create_blob(name, size + 512)
    blob = storage.service.get_blob_client(name, DISK_BLOB)
    for offset, data in writes.items():
        await blob.upload_page(data, offset=offset, length=len(data))
    await storage.write_tail(name, size + 512, FOOTER)
    return name


async def _read(storage: DiskStorage, name: str, offset: int, length: int) -> bytes:
    blob = storage.service.get_blob_client(name, DISK_BLOB)
    return await (await blob.download_blob(offset=offset, length=length)).readall()


def _host_state() -> tuple[list[str], list[str], list[Path]]:
    """What a sandbox could leave on the host: mounts of its own (the machine is shared:
    others' mounts and loop devices come and go), loop devices over its files, its work
    directories."""
    sources = {f"azrestore-{n}" for n in ("dev", "shm", "tmp", "run", "state", "mnt")}
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        where, (_, source, *_) = line.split()[4], line.split(" - ")[1].split()
        if (
            source in sources | {"guest"}
            or "azrestore-guest." in where
            or where
            in (
                "/etc/lvm",
                "/var/lib/azrestore",
            )
        ):
            mounts.append(line)
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout
    return (
        mounts,
        [line for line in loops.splitlines() if "azrestore-guest." in line],
        sorted(Path("/var/tmp").glob("azrestore-guest.*")),
    )


def _left_in_tmp() -> bool:
    """Whether the file the script made in its private /tmp is in the host's."""
    return os.path.exists("/tmp/guest-file")


SCRIPT = r"""
set -eu
[ -b /dev/disk/azure/scsi1/lun0 ] && [ -b /dev/disk/azure/scsi1/lun3 ] && echo "luns: block"
[ -b /dev/sdc ] && [ -b /dev/sdd ] && echo "sdc sdd: block"
[ "$(stat -Lc %t:%T /dev/sdc)" = "$(stat -Lc %t:%T /dev/disk/azure/scsi1/lun0)" ] && echo same
echo "size: $(blockdev --getsize64 /dev/disk/azure/scsi1/lun0)"
dd if=/dev/sdc bs=512 skip=2048 count=1 status=none | head -c 5; echo
printf 'written by the guest' | dd of=/dev/sdc bs=512 seek=6144 conv=notrunc status=none
dd if=/dev/zero of=/dev/sdc bs=1M seek=1 count=1 conv=notrunc status=none
mkdir -p /mnt/guest && mount -t tmpfs guest /mnt/guest && touch /tmp/guest-file
if ! touch /var/azrestore-guest-probe 2>/dev/null; then echo "host root: read-only"; fi
echo "lun: $AZRESTORE_LUN, args: $*"
echo "to stderr" >&2
sync
"""


async def test_the_script_sees_its_disks_and_what_it_writes_goes_back(
    storage: DiskStorage,
) -> None:
    first = await _disk(storage, "guestdisk0", 8 * MiB, {MiB: b"hello".ljust(4096, b"h")})
    second = await _disk(storage, "guestdisk3", 4 * MiB, {})
    before = _host_state()
    run = await run_guest_script(
        storage,
        [AttachedDisk(3, "disk3", second), AttachedDisk(0, "disk0", first)],
        SCRIPT,
        [("AZRESTORE_LUN", "0"), ("", "one"), ("", "two")],
    )
    assert run.exit_code == 0, run.stderr
    assert run.stdout.splitlines() == [
        "luns: block",
        "sdc sdd: block",
        "same",
        f"size: {8 * MiB}",  # the footer is not part of the disk
        "hello",
        "host root: read-only",
        "lun: 0, args: one two",
    ]
    assert run.stderr == "to stderr\n"
    assert await _read(storage, first, 3 * MiB, 20) == b"written by the guest"
    assert await _read(storage, first, MiB, MiB) == bytes(MiB)
    assert await _read(storage, first, 8 * MiB, 512) == FOOTER
    # One chunk written, one cleared; the untouched disk not at all.
    assert (run.written["disk0"].uploaded, run.written["disk0"].cleared) == (1, 1)
    assert (run.written["disk3"].uploaded, run.written["disk3"].cleared) == (0, 0)
    assert run.downloaded == MiB
    assert _host_state() == before
    assert not _left_in_tmp()


async def test_exit_status_and_output_tails_are_the_scripts(storage: DiskStorage) -> None:
    disk = await _disk(storage, "guestdisk-tails", 4 * MiB, {})
    script = "head -c 10000 /dev/zero | tr '\\0' a; echo END; echo oops >&2; exit 7\n"
    run = await run_guest_script(storage, [AttachedDisk(0, "d", disk)], script, [])
    assert run.exit_code == 7
    assert len(run.stdout.encode()) == 4096 and run.stdout.endswith("aaaEND\n")
    assert run.stderr == "oops\n"


async def test_a_script_past_its_time_is_stopped(storage: DiskStorage) -> None:
    disk = await _disk(storage, "guestdisk-slow", 4 * MiB, {})
    before = _host_state()
    run = await run_guest_script(
        storage, [AttachedDisk(0, "d", disk)], "echo started; sleep 60 & wait\n", [], time_limit=1
    )
    assert run.exit_code is None and run.stdout == "started\n"
    assert _host_state() == before


async def test_a_cancelled_run_leaves_nothing_behind(storage: DiskStorage) -> None:
    disk = await _disk(storage, "guestdisk-cancel", 4 * MiB, {})
    before = _host_state()
    with anyio.move_on_after(2):
        await run_guest_script(storage, [AttachedDisk(0, "d", disk)], "sleep 60\n", [])
    assert _host_state() == before


async def _upload(storage: DiskStorage, name: str, image: Path) -> str:
    data = await anyio.Path(image).read_bytes()
    writes = {
        offset: data[offset : offset + MiB]
        for offset in range(0, len(data), MiB)
        if data[offset : offset + MiB].count(0) != MiB
    }
    return await _disk(storage, name, len(data), writes)


async def test_the_emulator_judges_each_disk_itself(storage: DiskStorage, tmp_path: Path) -> None:
    """Whatever the script says: a prepared Linux root and a Windows volume with RDP and
    an agent are ready; random bytes are not."""
    linux = linux_disk(tmp_path, "linux.raw", agent=True)
    windows = ntfs_disk(
        tmp_path,
        "windows.raw",
        windows_tree(tmp_path / "win", deny=0, agent=True, installer=False),
    )
    noise = noise_disk(tmp_path, "noise.raw")
    disks = [
        AttachedDisk(0, "linux", await _upload(storage, "judge-linux", linux)),
        AttachedDisk(1, "windows", await _upload(storage, "judge-windows", windows)),
        AttachedDisk(2, "noise", await _upload(storage, "judge-noise", noise)),
    ]
    # The Linux root gets sshd enabled by hand here (prepare-linux.sh is tested elsewhere).
    script = (
        "set -e; mkdir /tmp/r; mount /dev/disk/azure/scsi1/lun0-part2 /tmp/r\n"
        "ln -s /usr/lib/systemd/system/ssh.service"
        " /tmp/r/etc/systemd/system/multi-user.target.wants/ssh.service\n"
        "ln -s /usr/lib/systemd/system/walinuxagent.service"
        " /tmp/r/etc/systemd/system/multi-user.target.wants/walinuxagent.service\n"
        "umount /tmp/r; echo 'AZRESTORE-RESULT {\"ok\": false}'\n"
    )
    run = await run_guest_script(storage, disks, script, [])
    assert run.exit_code == 0, run.stderr
    verdicts = run.verdicts
    assert verdicts["linux"].ready and verdicts["linux"].os == "Linux", verdicts["linux"]
    assert verdicts["windows"].ready and verdicts["windows"].os == "Windows", verdicts
    assert "agent: service WindowsAzureGuestAgent" in verdicts["windows"].evidence
    assert not verdicts["noise"].ready and verdicts["noise"].os is None


async def test_helpers_run_at_once_each_in_its_own_sandbox(storage: DiskStorage) -> None:
    disks = {vm: await _disk(storage, f"guestdisk-{vm}", 4 * MiB, {}) for vm in ("one", "two")}
    before = _host_state()
    script = (
        "ls /dev/disk/azure/scsi1; printf '%s' \"$VM\" > /dev/sdc; sleep 1; "
        "head -c 3 /dev/sdc; echo\n"
    )
    runs = {}

    async def helper(vm: str) -> None:
        runs[vm] = await run_guest_script(
            storage, [AttachedDisk(0, vm, disks[vm])], script, [("VM", vm)]
        )

    async with anyio.create_task_group() as tasks:
        for vm in disks:
            tasks.start_soon(helper, vm)
    for vm, run in runs.items():
        assert run.exit_code == 0, run.stderr
        assert run.stdout == f"lun0\n{vm}\n"  # each sees its own disk only
        assert await _read(storage, disks[vm], 0, 3) == vm.encode()
    assert _host_state() == before


async def test_kept_host_directories_stay_visible_read_only(tmp_path: Path) -> None:
    # The emulator's inspection runs its own Python in the sandbox: a checkout or venv
    # under /tmp (which the sandbox covers with a private one) must stay visible there.
    require_sandbox()
    host = Path(tempfile.mkdtemp(prefix="azrestore-keep-", dir="/tmp"))
    work = Path(tempfile.mkdtemp(prefix="azrestore-keep-work-", dir="/var/tmp"))
    try:
        (host / "marker").write_text("from the host\n")
        write_devices(work, [])
        program = f"cat '{host}/marker'; touch '{host}/new' || echo read-only\n"
        kept = await run_phase(work, "keep", program, env={}, time_limit=30, keep=[host])
        assert kept.exit_code == 0 and kept.stdout == "from the host\nread-only\n", kept
        assert not (host / "new").exists()
        hidden = await run_phase(work, "hide", f"cat '{host}/marker'\n", env={}, time_limit=30)
        assert hidden.exit_code != 0 and "No such file" in hidden.stderr, hidden
    finally:
        shutil.rmtree(host)
        shutil.rmtree(work)
