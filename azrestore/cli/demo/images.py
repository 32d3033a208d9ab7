"""The demo's two sample backups, as backup products hand them over: a Linux GPT/UEFI disk
in a streamOptimized VMDK (as an OVA export holds) and a Windows MBR/BIOS disk in a dynamic
VHDX (as a Hyper-V export writes), each built as a sparse raw image and converted by
``qemu-img`` (see :mod:`azrestore.cli.demo`).

They are reused when the output directory holds this demo's exports already; the raw
images are intermediates, removed once converted."""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ...formats.sizes import GiB, KiB, MiB, format_size
from .efisign import signed_loader
from .fat32 import Fat32, Tree
from .terminal import say, show_command
from .tools import DemoError, export_image, run_tool
from .winhives import bcd_keys, hive, software_keys, system_keys

#: Bump when the images change, so that an older demo-out/ is rebuilt.
LAYOUT = "5"
STAMP = ".demo-images"
LINUX_IMAGE = "web01-os.vmdk"
WINDOWS_IMAGE = "dc01-os.vhdx"
#: Left in demo-out/ by earlier demos (before restores were shown; before the backups
#: were exports); removed.
OLD_FILES = ("disk.img", "disk.vhd", "parts", "web01-os.raw", "dc01-os.raw")

#: 2 GiB and 64 KiB: not a whole MiB, so the inspect table shows the VHD's padding.
LINUX_SIZE = 2 * GiB + 64 * KiB
LINUX_ESP = (1 * MiB, 100 * MiB)  # (offset, size)
LINUX_ROOT_START = LINUX_ESP[0] + LINUX_ESP[1]
WINDOWS_SIZE = 3 * GiB
WINDOWS_PART_START = 1 * MiB
#: What the Windows volume holds, by windows_contents().
WINDOWS_CONTENTS = {
    "windows": "Windows' SYSTEM and SOFTWARE hives and its BCD (hivexsh), as before it is"
    " prepared for Azure",
    "empty": "left empty (ntfs-3g is not installed)",
    "files": "a few files (ntfscp); no registry hives: they need root, FUSE and hivexsh",
}


@dataclass(frozen=True)
class Export:
    """How one VM's backup is handed over: the file, its format and subformat for
    ``qemu-img convert -O FORMAT -o subformat=SUBFORMAT``, and what makes such a file."""

    vm: str
    name: str
    format: str
    subformat: str
    kind: str

    @property
    def what(self) -> str:
        return f"{self.subformat} {self.format.upper()} ({self.kind})"


LINUX_EXPORT = Export("web01", LINUX_IMAGE, "vmdk", "streamOptimized", "OVA export")
WINDOWS_EXPORT = Export("dc01", WINDOWS_IMAGE, "vhdx", "dynamic", "Hyper-V export")


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
            # An OpenSSH server that is not enabled, the old NIC's persistent name, an
            # initramfs without Hyper-V drivers: the Linux helper's script (run for real
            # by the emulator where it can) enables sshd, removes the rule, adds the
            # drivers, and installs the Azure agent at first boot.
            "usr/lib/systemd/system/ssh.service": "[Unit]\nDescription=OpenBSD Secure Shell"
            " server\n\n[Service]\nExecStart=/usr/sbin/sshd -D\n\n[Install]\n"
            "WantedBy=multi-user.target\n",
            "usr/sbin/sshd": "#!/bin/sh\n",
            "etc/udev/rules.d/70-persistent-net.rules": 'SUBSYSTEM=="net", ACTION=="add",'
            ' ATTR{address}=="00:50:56:9a:10:21", NAME="eth0"\n',
            "etc/initramfs-tools/modules": "# modules to include in the initramfs\n",
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


def esp_tree(work: Path) -> Tree:
    """An EFI system partition's files: shim and grub stand-ins, small EFI applications
    signed with the demo's key (see :mod:`.efisign`), so that secure boot can be on."""
    shim = signed_loader(work, "shimx64", padding=64 * KiB)
    return {
        "EFI": {
            "BOOT": {"BOOTX64.EFI": shim, "grub.cfg": _GRUB_STUB},
            "ubuntu": {
                "shimx64.efi": shim,
                "grubx64.efi": signed_loader(work, "grubx64", padding=128 * KiB),
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
    Fat32(esp).write(esp_tree(work))
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


def windows_contents() -> str:
    """What the demo can put on the Windows volume here: ``windows`` (its registry hives,
    BCD and files, through an ntfs-3g mount: root, FUSE and hivexsh), ``files`` (a few
    files into C:\\ with ntfscp) or ``empty``."""
    if (
        os.geteuid() == 0
        and os.path.exists("/dev/fuse")
        and all(shutil.which(tool) for tool in ("ntfs-3g", "hivexsh"))
    ):
        return "windows"
    return "files" if shutil.which("ntfscp") else "empty"


def make_windows_image(work: Path, target: Path, random_mib: int, contents: str) -> None:
    """MBR: one active NTFS partition (C:) holding ``contents`` (see windows_contents)."""
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
    files: dict[str, str | bytes] = {
        "bootmgr": b"\xeb\x52\x90NTFS    " + os.urandom(384 * KiB),
        "BOOTNXT": b"\x00",
        "README.txt": "dc01: a sample Windows backup restored by the azrestore demo.\r\n",
        "pagefile.sys": os.urandom(random_mib * MiB),
    }
    if contents == "windows":
        _windows_volume(work, ntfs, files)
    elif contents == "files":
        tree = work / "c-files"
        shutil.rmtree(tree, ignore_errors=True)
        # ntfscp writes into existing directories only: these go to C:\ itself.
        write_files(tree, files)
        for item in sorted(tree.iterdir()):
            run_tool(["ntfscp", "-q", str(ntfs), str(item), item.name])
    disk = make_empty(target, WINDOWS_SIZE)
    run_tool(
        ["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(disk)],
        stdin=f"label: dos\nstart={WINDOWS_PART_START // 512}, type=7, bootable\n",
    )
    copy_sparse(ntfs, disk, WINDOWS_PART_START)


def _windows_volume(work: Path, ntfs: Path, files: dict[str, str | bytes]) -> None:
    """C:\\ as the preparation finds an installed Windows: its SYSTEM and SOFTWARE hives
    and Boot\\BCD as a Windows install has them before it is prepared, and ``files``."""
    hives = work / "hives"
    hives.mkdir(exist_ok=True)
    config = "Windows/System32/config"
    tree: dict[str, str | bytes] = {
        **files,
        f"{config}/SYSTEM": hive(hives / "SYSTEM", system_keys()).read_bytes(),
        f"{config}/SOFTWARE": hive(hives / "SOFTWARE", software_keys()).read_bytes(),
        "Boot/BCD": hive(hives / "BCD", bcd_keys()).read_bytes(),
        "Windows/System32/notepad.exe": b"MZ",
    }
    mount = work / "c-mount"
    mount.mkdir(exist_ok=True)
    run_tool(["ntfs-3g", "-o", "rw", str(ntfs), str(mount)])
    daemons = _ntfs_3g_serving(str(ntfs))
    try:
        write_files(mount, tree)
    finally:
        run_tool(["umount", str(mount)])
        for pid in daemons:
            _wait_for_exit(pid, str(ntfs))


def _ntfs_3g_serving(image: str) -> list[int]:
    """The ntfs-3g processes serving ``image``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"ntfs-3g") and image.encode() in argv:
            found.append(int(entry))
    return found


def _wait_for_exit(pid: int, image: str, within: float = 60.0) -> None:
    """Wait for ntfs-3g to exit (and reap it: the demo is a subreaper, so the daemon is
    its child): on a file (a plain FUSE mount, not a block device's) it closes the volume
    after umount has returned, in its own time."""
    deadline = time.monotonic() + within
    while True:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                state, parent = handle.read().rsplit(")", 1)[1].split()[:2]
        except OSError:
            return  # gone, reaped by its parent
        if state == "Z":
            if int(parent) == os.getpid():
                os.waitpid(pid, 0)
            return
        if time.monotonic() > deadline:
            raise DemoError(f"ntfs-3g did not close {image} within {within:.0f} s of umount")
        time.sleep(0.02)


def _stamp(random_mib: int, contents: str) -> str:
    return json.dumps({"layout": LAYOUT, "random_mib": random_mib, "windows": contents})


def _export(raw: Path, out: Path, export: Export) -> None:
    target = out / export.name
    show_command(
        f"qemu-img convert -f raw -O {export.format} -o subformat={export.subformat} {raw} {target}"
    )
    export_image(raw, target, export.format, export.subformat)


def make_backups(out: Path, random_mib: int) -> tuple[Path, Path]:
    """Build both exports in ``out`` (``random_mib`` MiB of incompressible data in each),
    or reuse those an earlier run of this demo built."""
    linux, windows = out / LINUX_IMAGE, out / WINDOWS_IMAGE
    stamp = out / STAMP
    for name in OLD_FILES:
        old = out / name
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)
    contents = windows_contents()
    try:
        reuse = (
            linux.exists()
            and windows.exists()
            and stamp.read_text() == _stamp(random_mib, contents)
        )
    except OSError:
        reuse = False
    if not reuse:
        stamp.unlink(missing_ok=True)
        work = out / "build"
        work.mkdir(parents=True, exist_ok=True)
        try:
            raw = work / "web01-os.raw"
            say("web01: GPT, EFI system partition (FAT32) and ext4 root (mkfs.ext4 -d)")
            make_linux_image(work, raw, random_mib)
            _export(raw, out, LINUX_EXPORT)
            raw.unlink()
            raw = work / "dc01-os.raw"
            say(f"dc01: MBR, one active NTFS partition (mkntfs): {WINDOWS_CONTENTS[contents]}")
            make_windows_image(work, raw, random_mib, contents)
            _export(raw, out, WINDOWS_EXPORT)
        finally:
            shutil.rmtree(work, ignore_errors=True)  # the raw images too
        stamp.write_text(_stamp(random_mib, contents))
    else:
        say(f"reusing the backups in {out}/ (delete it to rebuild them)")
    for export, size in ((LINUX_EXPORT, LINUX_SIZE), (WINDOWS_EXPORT, WINDOWS_SIZE)):
        path = out / export.name
        say(
            f"{export.vm}: {export.what}, {path.name}: a {format_size(size)} disk"
            f" in a {format_size(path.stat().st_size)} file"
        )
    return linux, windows
