"""``make demo``: restore two backed-up VMs into a local Azure, with the live view.

Runs as ``python -m azrestore.cli.demo [--quick] [--out DIR]`` from the repository.
Everything goes to ``./demo-out/``:

1. two sample backups, sparse raw disk images as a backup product would hand them over:
   ``web01-os.raw``, a Linux GPT/UEFI disk (an EFI system partition, FAT32, holding an
   ``EFI/BOOT`` tree; an ext4 root made by ``mkfs.ext4 -d`` from a small Linux tree with
   ``/etc/fstab`` naming ``/dev/sda`` devices, as a restore has to fix), and
   ``dc01-os.raw``, a Windows MBR/BIOS disk (one active NTFS partition by ``mkntfs``,
   with a few files copied in by ``ntfscp`` when it is installed). They are reused when
   ``demo-out/`` holds this demo's images already;
2. ``azrestore inspect`` of the Linux image (UEFI, Linux, generation V2);
3. ``demo-out/plan.yaml``: both VMs, a proxy and the Linux and Windows helpers;
4. ``azrestore restore demo-out/plan.yaml --emulator --dry-run``, then the real run
   against a fresh local emulator (Azurite behind the strict gateway, and the Resource
   Manager simulator) with the live view on this terminal and the report at the end.

``--quick`` runs the simulated Azure nearly as fast as it can go (for a test).

Every process the demo starts is stopped before it exits, also on Ctrl-C (exit 130),
SIGTERM or an error: the demo is a child subreaper, so that even a grandchild such as
Azurite, which runs in its own session, comes back to it if its parent dies.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import os
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.text import Text

from ..formats.sizes import GiB, KiB, MiB, format_size
from ..redact import redact_text

#: Bump when the images change, so that an older demo-out/ is rebuilt.
LAYOUT = "2"
STAMP = ".demo-images"
LINUX_IMAGE = "web01-os.raw"
WINDOWS_IMAGE = "dc01-os.raw"
PLAN = "plan.yaml"
#: Left in demo-out/ by the demo before restores were shown; removed.
OLD_FILES = ("disk.img", "disk.vhd", "parts")

#: 2 GiB and 64 KiB: not a whole MiB, so the inspect table shows the VHD's padding.
LINUX_SIZE = 2 * GiB + 64 * KiB
LINUX_ESP = (1 * MiB, 100 * MiB)  # (offset, size)
LINUX_ROOT_START = LINUX_ESP[0] + LINUX_ESP[1]
WINDOWS_SIZE = 3 * GiB
WINDOWS_PART_START = 1 * MiB

#: ``azrestore restore --time-factor``: simulated Azure takes ~300 s (at factor 1) to
#: restore the two VMs. Measured: at 0.05 the restore command takes ~30 s (its report
#: says ~21 s; starting and stopping the emulator is the rest), the whole demo ~40 s;
#: at 0.002 the command takes ~10 s, most of it starting up.
TIME_FACTOR = 0.05
QUICK_TIME_FACTOR = 0.002
#: The plan's bandwidth cap (for the whole run), so that the disks' rows stay on screen.
DEMO_BANDWIDTH = "6MiB/s"
#: How long a child gets to stop by itself after Ctrl-C before it is killed.
GRACE_SECONDS = 20.0

REQUIRED_TOOLS = ("sfdisk", "mkfs.ext4", "mkfs.vfat", "mkntfs")
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
#: Where Azurite keeps its data (see azrestore.emulator.azurite).
TMP = Path(tempfile.gettempdir())
AZURITE_TMP_PREFIX = "azrestore-azurite-"

console = Console(highlight=False)


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


@dataclass(frozen=True)
class Options:
    out: Path
    quick: bool

    @property
    def time_factor(self) -> float:
        return QUICK_TIME_FACTOR if self.quick else TIME_FACTOR

    @property
    def random_mib(self) -> int:
        """MiB of incompressible data per image (fewer when quick)."""
        return 1 if self.quick else 6


def step(text: str) -> None:
    console.print(f"\n[bold cyan]==>[/] [bold]{text}[/]")


def say(text: str) -> None:
    console.print(Text(text), soft_wrap=True)


def show_command(text: str) -> None:
    console.print(Text(f"$ {text}", style="dim"), soft_wrap=True)


def run_tool(argv: Sequence[str], stdin: str | None = None) -> None:
    """Run a disk tool quietly; its stderr becomes the error when it fails."""
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, input=stdin)
    except FileNotFoundError:
        raise DemoError(f"{argv[0]} not found (run `make install`)") from None
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:]
        raise DemoError(f"{shlex.join(argv)} failed: {' '.join(detail)}") from None


# -- processes --------------------------------------------------------------------------

#: Set by the SIGTERM handler: the children did not get the signal from the terminal.
_terminated = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def become_subreaper() -> None:
    """Orphaned descendants (Azurite, if azrestore died) are re-parented to this process,
    so :func:`stop_orphans` can find them. Linux only; a no-op elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        children = _children_of(todo.pop())
        found += children
        todo += children
    return found


def _kill_tree(pids: Sequence[int]) -> None:
    """SIGKILL these processes and the process groups they lead (not ours)."""
    own_group = os.getpgrp()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(pid)
            if group == pid and group != own_group:
                os.killpg(group, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)


def stop_orphans() -> int:
    """Kill and reap whatever descendant was re-parented to this process, and remove an
    orphaned Azurite's temporary directory (its working directory); how many there were."""
    orphans = _descendants(os.getpid())
    workdirs = []
    for pid in orphans:
        with contextlib.suppress(OSError):
            workdirs.append(Path(os.readlink(f"/proc/{pid}/cwd")))
    _kill_tree(orphans)
    for pid in orphans:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)
    for workdir in workdirs:
        if workdir.name.startswith(AZURITE_TMP_PREFIX) and workdir.parent == TMP:
            shutil.rmtree(workdir, ignore_errors=True)
    return len(orphans)


def run_child(argv: Sequence[str], *, shown: str) -> int:
    """Run a command on this terminal and return its exit status.

    On Ctrl-C the child (in our process group) gets the SIGINT too; it is given
    ``GRACE_SECONDS`` to stop what it started, then it and its descendants are killed.
    """
    show_command(redact_text(shown))
    sys.stdout.flush()
    child = subprocess.Popen(argv)
    try:
        return child.wait()
    except KeyboardInterrupt:
        if _terminated:  # SIGTERM came to us only: pass the interrupt on
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + GRACE_SECONDS
        with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        if child.poll() is None:
            _kill_tree([*_descendants(child.pid), child.pid])
            child.wait()
        raise


def azrestore(*args: str) -> list[str]:
    return [sys.executable, "-m", "azrestore.cli", *args]


def run_azrestore(*args: str, what: str) -> None:
    status = run_child(azrestore(*args), shown=shlex.join(["azrestore", *args]))
    if status == 130:
        raise KeyboardInterrupt
    if status != 0:
        raise DemoError(f"{what} exited with status {status}")


# -- a FAT32 file system, filled without mounting it --------------------------------------

#: Names to file contents, or to a directory's tree.
Tree = dict[str, "bytes | Tree"]


def _short_name(name: str) -> tuple[bytes, int]:
    """The 8.3 entry name, and the case flags Linux and Windows use for an all-lower
    base or extension (so that ``grub.cfg`` needs no long-name entries)."""
    base, _, ext = name.partition(".")
    flags = 0
    for part, flag in ((base, 0x08), (ext, 0x10)):
        if part.islower():
            flags |= flag
        elif not (part.isupper() or part.isdigit() or not part):
            raise ValueError(f"{name}: mixed case needs a long name")
    if not 1 <= len(base) <= 8 or len(ext) > 3:
        raise ValueError(f"{name}: not an 8.3 name")
    return f"{base.upper():<8}{ext.upper():<3}".encode("ascii"), flags


def _fat_date_time(when: datetime) -> tuple[int, int]:
    date = ((when.year - 1980) << 9) | (when.month << 5) | when.day
    clock = (when.hour << 11) | (when.minute << 5) | (when.second // 2)
    return date, clock


def _dir_entry(name: bytes, flags: int, attr: int, cluster: int, size: int) -> bytes:
    date, clock = _fat_date_time(datetime.now())
    return struct.pack(
        "<11sBBBHHHHHHHI",
        name,
        attr,
        flags,
        0,
        clock,
        date,
        date,
        cluster >> 16,
        clock,
        date,
        cluster & 0xFFFF,
        size,
    )


class Fat32:
    """Adds directories and files to a freshly made FAT32 image (``mkfs.vfat -F 32``):
    enough for an EFI system partition's few files, with no mount and no mtools."""

    def __init__(self, image: Path) -> None:
        self.image = image
        with image.open("rb") as handle:
            boot = handle.read(512)
            sector, per_cluster, reserved, fats = struct.unpack_from("<HBHB", boot, 11)
            fat16_size: int = struct.unpack_from("<H", boot, 22)[0]
            fat_size, _, _, root, fsinfo = struct.unpack_from("<IHHIH", boot, 36)
            if fat16_size or boot[82:87] != b"FAT32":
                raise DemoError(f"{image}: not a FAT32 file system")
            handle.seek(reserved * sector)
            self.fat = bytearray(handle.read(fat_size * sector))
        self.sector: int = sector
        self.root: int = root
        self.fsinfo: int = fsinfo
        self.fat_offsets: list[int] = [(reserved + n * fat_size) * sector for n in range(fats)]
        self.data: int = (reserved + fats * fat_size) * sector
        self.cluster_size: int = sector * per_cluster
        self.clusters = len(self.fat) // 4
        self.next_free = 3
        self.used = 0
        self.writes: list[tuple[int, bytes]] = []

    def _allocate(self, size: int) -> int:
        """A chain of contiguous clusters for ``size`` bytes; its first cluster."""
        count = max(1, -(-size // self.cluster_size))
        start = self.next_free
        while any(
            struct.unpack_from("<I", self.fat, 4 * c)[0] & 0x0FFFFFFF
            for c in range(start, start + count)
        ):
            start += 1
        if start + count > self.clusters:
            raise DemoError(f"{self.image}: full")
        for cluster in range(start, start + count):
            last = cluster == start + count - 1
            struct.pack_into("<I", self.fat, 4 * cluster, 0x0FFFFFFF if last else cluster + 1)
        self.next_free = start + count
        self.used += count
        return start

    def _offset(self, cluster: int) -> int:
        return self.data + (cluster - 2) * self.cluster_size

    def add(self, tree: Tree, parent: int = 0) -> list[bytes]:
        """Write ``tree`` (name -> file bytes, or a dict for a directory) into the
        directory whose first cluster is ``parent`` (0: the root); its entries."""
        entries = []
        for name, content in tree.items():
            short, flags = _short_name(name)
            if isinstance(content, bytes):
                cluster = self._allocate(len(content)) if content else 0
                if content:
                    self.writes.append((self._offset(cluster), content))
                entries.append(_dir_entry(short, flags, 0x20, cluster, len(content)))
                continue
            size = 32 * (len(content) + 2)
            cluster = self._allocate(size)
            inner = self.add(content, cluster)
            dots = [
                _dir_entry(b".          ", 0, 0x10, cluster, 0),
                _dir_entry(b"..         ", 0, 0x10, parent, 0),
            ]
            self.writes.append((self._offset(cluster), b"".join(dots + inner)))
            entries.append(_dir_entry(short, flags, 0x10, cluster, 0))
        return entries

    def write(self, tree: Tree) -> None:
        entries = b"".join(self.add(tree))
        with self.image.open("r+b") as handle:
            # After the volume label, if mkfs.vfat wrote one: the first free entry.
            handle.seek(self._offset(self.root))
            root = handle.read(self.cluster_size)
            first_free = next(i for i in range(0, len(root), 32) if root[i] in (0, 0xE5))
            if first_free + len(entries) > len(root):
                raise DemoError(f"{self.image}: the root directory is full")
            self.writes.append((self._offset(self.root) + first_free, entries))
            for offset, data in self.writes:
                handle.seek(offset)
                handle.write(data)
            for offset in self.fat_offsets:
                handle.seek(offset)
                handle.write(self.fat)
            # FSInfo: free clusters and the next free one.
            handle.seek(self.fsinfo * self.sector + 488)
            free = struct.unpack("<I", handle.read(4))[0]
            if free != 0xFFFFFFFF:
                free -= self.used
            handle.seek(self.fsinfo * self.sector + 488)
            handle.write(struct.pack("<II", free, self.next_free))


# -- the sample backups -------------------------------------------------------------------


def make_empty(path: Path, size: int) -> Path:
    """A new file of ``size`` bytes, all hole."""
    path.unlink(missing_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def copy_sparse(source: Path, target: Path, offset: int) -> None:
    """Copy ``source``'s data extents into ``target`` at ``offset``; holes stay holes."""
    fd = os.open(source, os.O_RDONLY)
    out = os.open(target, os.O_WRONLY)
    try:
        size = os.fstat(fd).st_size
        position = 0
        while position < size:
            try:
                start = os.lseek(fd, position, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole is left
                    break
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            while start < end:
                chunk = os.pread(fd, min(8 * MiB, end - start), start)
                os.pwrite(out, chunk, offset + start)
                start += len(chunk)
            position = end
    finally:
        os.close(fd)
        os.close(out)


def write_files(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)


def linux_tree(root: Path, random_mib: int) -> None:
    """A small Linux system, as a file-level look at a backed-up server would show."""
    shutil.rmtree(root, ignore_errors=True)
    half = random_mib * MiB // 2
    write_files(
        root,
        {
            "etc/os-release": 'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n'
            'PRETTY_NAME="Ubuntu 22.04.4 LTS (azrestore demo)"\n',
            "etc/hostname": "web01\n",
            "etc/hosts": "127.0.0.1 localhost\n127.0.1.1 web01\n",
            # Device names of the old hardware: the Linux helper rewrites them by UUID.
            "etc/fstab": "# <file system> <mount point> <type> <options> <dump> <pass>\n"
            "/dev/sda2  /          ext4  errors=remount-ro  0  1\n"
            "/dev/sda1  /boot/efi  vfat  umask=0077         0  1\n",
            "etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM yes\nX11Forwarding yes\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n",
            "etc/default/grub": 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_DISTRIBUTOR="Ubuntu"\n'
            'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash"\nGRUB_CMDLINE_LINUX="root=/dev/sda2"\n',
            "etc/network/interfaces": "auto eth0\niface eth0 inet static\n"
            "    address 192.168.10.21/24\n    gateway 192.168.10.1\n",
            "usr/bin/hello": "#!/bin/sh\necho hello from web01, restored by azrestore\n",
            "usr/lib/x86_64-linux-gnu/libdemo.so.1": os.urandom(half),
            "var/www/html/index.html": "<html><body><h1>web01</h1></body></html>\n",
            "var/lib/demo/cache.bin": os.urandom(random_mib * MiB - half),
            "var/log/syslog": "".join(
                f"Mar  3 10:{n // 60 % 60:02d}:{n % 60:02d} web01 demo[{1000 + n}]: request {n}"
                " served in 3 ms\n"
                for n in range(20000)
            ),
            "home/admin/.bashrc": "export PS1='\\u@\\h:\\w\\$ '\n",
        },
    )
    (root / "usr/bin/hello").chmod(0o755)
    (root / "boot/efi").mkdir(parents=True)


_GRUB_STUB = b"search.fs_label root root\nconfigfile /boot/grub/grub.cfg\n"


def esp_tree() -> Tree:
    """An EFI system partition's files (the binaries are placeholders)."""
    return {
        "EFI": {
            "BOOT": {"BOOTX64.EFI": b"MZ" + os.urandom(64 * KiB), "grub.cfg": _GRUB_STUB},
            "ubuntu": {
                "shimx64.efi": b"MZ" + os.urandom(64 * KiB),
                "grubx64.efi": b"MZ" + os.urandom(128 * KiB),
                "grub.cfg": _GRUB_STUB,
            },
        }
    }


def make_linux_image(work: Path, target: Path, random_mib: int) -> None:
    """GPT: an EFI system partition (FAT32) and an ext4 root with a Linux tree."""
    root_size = LINUX_SIZE - LINUX_ROOT_START - 1 * MiB  # the backup GPT is at the end
    tree = work / "rootfs"
    linux_tree(tree, random_mib)
    esp = make_empty(work / "esp.fs", LINUX_ESP[1])
    run_tool(["mkfs.vfat", "-F", "32", "-n", "EFI", str(esp)])
    Fat32(esp).write(esp_tree())
    root = make_empty(work / "root.fs", root_size)
    run_tool(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(tree), str(root)])

    disk = make_empty(target, LINUX_SIZE)
    run_tool(
        ["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(disk)],
        stdin="label: gpt\n"
        f"start={LINUX_ESP[0] // 512}, size={LINUX_ESP[1] // 512},"
        ' type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI System"\n'
        f"start={LINUX_ROOT_START // 512}, size={root_size // 512},"
        ' type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"\n',
    )
    copy_sparse(esp, disk, LINUX_ESP[0])
    copy_sparse(root, disk, LINUX_ROOT_START)


def make_windows_image(work: Path, target: Path, random_mib: int) -> bool:
    """MBR: one active NTFS partition (C:). Returns whether files were copied in."""
    part_size = WINDOWS_SIZE - WINDOWS_PART_START
    ntfs = make_empty(work / "c.fs", part_size)
    # The geometry and start sector are what Windows' boot code reads from the NTFS boot
    # sector; mkntfs cannot learn them from a file.
    run_tool(
        [
            *("mkntfs", "-F", "-Q", "-q", "-L", "Windows"),
            *("-p", str(WINDOWS_PART_START // 512), "-H", "255", "-S", "63", str(ntfs)),
        ]
    )
    copied = shutil.which("ntfscp") is not None
    if copied:
        files = work / "c-files"
        shutil.rmtree(files, ignore_errors=True)
        # ntfscp writes into existing directories only: these go to C:\ itself.
        write_files(
            files,
            {
                "bootmgr": b"\xeb\x52\x90NTFS    " + os.urandom(384 * KiB),
                "BOOTNXT": b"\x00",
                "README.txt": "dc01: a sample Windows backup restored by the azrestore demo.\r\n",
                "pagefile.sys": os.urandom(random_mib * MiB),
            },
        )
        for item in sorted(files.iterdir()):
            run_tool(["ntfscp", "-q", str(ntfs), str(item), item.name])
    disk = make_empty(target, WINDOWS_SIZE)
    run_tool(
        ["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(disk)],
        stdin=f"label: dos\nstart={WINDOWS_PART_START // 512}, type=7, bootable\n",
    )
    copy_sparse(ntfs, disk, WINDOWS_PART_START)
    return copied


def _stamp(options: Options) -> str:
    return json.dumps({"layout": LAYOUT, "random_mib": options.random_mib})


def make_backups(options: Options) -> tuple[Path, Path]:
    """Build both images, or reuse those an earlier run of this demo built."""
    out = options.out
    linux, windows = out / LINUX_IMAGE, out / WINDOWS_IMAGE
    stamp = out / STAMP
    for name in OLD_FILES:
        old = out / name
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)
    try:
        reuse = linux.exists() and windows.exists() and stamp.read_text() == _stamp(options)
    except OSError:
        reuse = False
    if not reuse:
        stamp.unlink(missing_ok=True)
        work = out / "build"
        work.mkdir(parents=True, exist_ok=True)
        try:
            say(f"{linux}: GPT, EFI system partition (FAT32) and ext4 root (mkfs.ext4 -d)")
            make_linux_image(work, linux, options.random_mib)
            say(f"{windows}: MBR, one active NTFS partition (mkntfs)")
            if not make_windows_image(work, windows, options.random_mib):
                say("  ntfscp (ntfs-3g) not found: the NTFS partition stays empty")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        stamp.write_text(_stamp(options))
    else:
        say(f"reusing the images in {out}/ (delete it to rebuild them)")
    for image in (linux, windows):
        allocated = os.stat(image).st_blocks * 512
        say(
            f"  {image.name}: {format_size(image.stat().st_size)} disk,"
            f" {format_size(allocated)} allocated (the rest are holes, read as zeros)"
        )
    return linux, windows


# -- the plan -----------------------------------------------------------------------------


def _vm_id(name: str, group: str = "infra") -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}"
        f"/providers/Microsoft.Compute/virtualMachines/{name}"
    )


def plan_text(options: Options) -> str:
    subnet = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/network/providers"
        "/Microsoft.Network/virtualNetworks/vnet/subnets/default"
    )
    transfer = (
        ""
        if options.quick
        else f"transfer:\n  max_bandwidth: {DEMO_BANDWIDTH}   # so that the disks' progress shows\n"
    )
    return f"""\
# The azrestore demo's restore plan (see `azrestore plan example` for every key).
# With --emulator the subnet, proxy and helpers below are created in a fresh local Azure.
version: 1
target:
  subscription: {SUBSCRIPTION}
  resource_group: restored
  location: westeurope
  subnet: {subnet}
  tags: {{restored-by: azrestore-demo}}
proxy:
  vm: {_vm_id("azproxy")}
  idle_timeout: 30
helpers:
  linux: {_vm_id("helper-linux")}
  windows: {_vm_id("helper-windows")}
{transfer}vms:
  - name: web01
    size: Standard_D2s_v5
    # os and generation: auto (Linux, V2 from the EFI system partition)
    disks:
      - {{path: {LINUX_IMAGE}, role: os}}
    tags: {{app: web}}
  - name: dc01
    size: Standard_D2s_v5
    # os and generation: auto (Windows, V1 from the active MBR partition)
    disks:
      - {{path: {WINDOWS_IMAGE}, role: os}}
    tags: {{app: directory}}
"""


def write_plan(options: Options) -> Path:
    path = options.out / PLAN
    path.write_text(plan_text(options))
    say(path.read_text().rstrip())  # soft-wrapped: the resource ids are long
    return path


# -- the demo -------------------------------------------------------------------------------


def preflight() -> None:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise DemoError(f"missing {', '.join(missing)} (run `make install`)")
    from ..emulator.azurite import find_azurite

    find_azurite()  # says what to install when Azurite or Node.js is missing


def demo(options: Options) -> None:
    started = time.monotonic()
    preflight()
    options.out.mkdir(parents=True, exist_ok=True)

    step(f"making two sample backups in {options.out}/ (sparse raw disk images)")
    linux, _ = make_backups(options)

    step("inspecting the Linux backup: what it holds and the Azure VM it can become")
    run_azrestore("inspect", str(linux), what="azrestore inspect")

    step(f"writing the restore plan {options.out / PLAN}: two VMs, a proxy, two helpers")
    plan = write_plan(options)

    step("checking the plan and the images, and listing the steps (a dry run touches nothing)")
    run_azrestore("restore", str(plan), "--emulator", "--dry-run", what="the dry run")

    step(
        "restoring both VMs into a fresh local Azure (Azurite behind the strict gateway,"
        " and the Resource Manager simulator)"
    )
    say(
        "Both VMs run at once: upload the disk through the proxy, mount it on the helper"
        " of its OS, prepare it, unmount, register the VM, power it on and wait for its"
        f" agent. Simulated Azure here is {1 / options.time_factor:g} times faster than Azure."
    )
    run_azrestore(
        "restore",
        str(plan),
        "--emulator",
        "--time-factor",
        f"{options.time_factor:g}",
        what="azrestore restore",
    )
    script = Path(sys.executable).with_name("azrestore")
    name = os.path.relpath(script) if script.exists() else "azrestore"
    if name.startswith(".."):
        name = str(script)
    say(
        "The emulator, and the VMs in it, are gone now. Run the restore again with:\n"
        f"  {name} restore {plan} --emulator"
    )
    console.print(f"\n[bold green]demo done[/] in {time.monotonic() - started:.0f} s")


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m azrestore.cli.demo",
        description="Build two sample backups and restore them into a local Azure.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"run simulated Azure at time factor {QUICK_TIME_FACTOR:g} (for tests)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("demo-out"), help="where the images and plan go"
    )
    args = parser.parse_args(argv)
    return Options(out=args.out, quick=args.quick)


@contextlib.contextmanager
def _cleanup() -> Iterator[None]:
    """Catch SIGTERM like Ctrl-C, and stop every process left behind when leaving."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if left := stop_orphans():
            print(f"demo: stopped {left} process(es) left behind", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    become_subreaper()
    try:
        with _cleanup():
            demo(options)
    except KeyboardInterrupt:
        print("\ndemo: interrupted; everything it started is stopped", file=sys.stderr)
        sys.exit(128 + (signal.SIGTERM if _terminated else signal.SIGINT))
    except Exception as exc:  # one line, like the azrestore command itself
        print(f"demo: error: {redact_text(str(exc))}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
