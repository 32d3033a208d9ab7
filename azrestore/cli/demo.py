"""``make demo``: build a sample disk, inspect it, and upload it to a local Azurite.

Runs as ``python -m azrestore.cli.demo`` from the repository. Everything goes to
``./demo-out/``: a sparse 2 GiB GPT disk (an EFI system partition, an ext4 root made with
``mkfs.ext4 -d`` from a small tree, and a data partition with random data written at a few
scattered offsets). Then ``azrestore inspect`` and ``azrestore upload`` run against Azurite
behind the strict gateway (Azure's rules on every request), with the live progress bar on
this terminal. Finally the blob is downloaded and compared with the disk by qemu-img.

Every process the demo starts (Azurite, the gateway thread, the azrestore children) is
stopped before it exits, also on Ctrl-C or an error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.text import Text

from ..emulator.azurite import AZURITE_ACCOUNT, AZURITE_KEY, AzuriteProcess
from ..emulator.gateway import GatewayThread
from ..formats.sizes import SECTOR, GiB, KiB, MiB, format_size
from ..redact import redact_text

OUT = Path("demo-out")
#: 2 GiB and 64 KiB: not a whole MiB, so the VHD shows its padding to the next MiB.
DISK_SIZE = 2 * GiB + 64 * KiB
ESP = (1 * MiB, 100 * MiB)  # (offset, size)
ROOT = (101 * MiB, 1 * GiB)
DATA_START = ROOT[0] + ROOT[1]
#: Upload rate cap, so that the progress bar is visible for a few seconds.
RATE = "20MiB"
CONTAINER = "demo"
BLOB = "disk.vhd"
REQUIRED_TOOLS = ("sgdisk", "mkfs.ext4")

console = Console(highlight=False)


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


def step(text: str) -> None:
    console.print(f"\n[bold cyan]==>[/] [bold]{text}[/]")


def run_tool(argv: Sequence[str]) -> None:
    """Run a disk tool quietly; its stderr becomes the error when it fails."""
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise DemoError(f"{argv[0]} not found (run `make install`)") from None
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:]
        raise DemoError(f"{shlex.join(argv)} failed: {' '.join(detail)}") from None


def show_command(text: str) -> None:
    console.print(Text(f"$ {text}", style="dim"), soft_wrap=True)


def run_child(argv: Sequence[str], *, shown: str) -> int:
    """Run a command on this terminal and return its exit status. On Ctrl-C the child
    (in our process group) gets the SIGINT too; give it time to finish cleanly."""
    show_command(redact_text(shown))
    sys.stdout.flush()
    child = subprocess.Popen(argv)
    try:
        return child.wait()
    except KeyboardInterrupt:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise


def azrestore(*args: str) -> list[str]:
    return [sys.executable, "-m", "azrestore.cli.main", *args]


# -- the sample disk ----------------------------------------------------------------------


def make_tree(root: Path) -> None:
    """A small Linux-looking file tree for the ext4 root file system."""
    shutil.rmtree(root, ignore_errors=True)
    for directory in ("etc", "boot", "usr/bin", "var/log", "home/demo"):
        (root / directory).mkdir(parents=True)
    (root / "etc/os-release").write_text(
        'NAME="azrestore demo"\nID=azrestore-demo\nPRETTY_NAME="azrestore demo disk"\n'
    )
    (root / "etc/hostname").write_text("azrestore-demo\n")
    (root / "etc/fstab").write_text("LABEL=root / ext4 defaults 0 1\n")
    hello = root / "usr/bin/hello"
    hello.write_text("#!/bin/sh\necho hello from the azrestore demo disk\n")
    hello.chmod(0o755)
    (root / "var/log/demo.log").write_text(
        "".join(f"line {n}: the quick brown fox jumps over the lazy dog\n" for n in range(20000))
    )
    # Incompressible data, so the upload has real work to do.
    (root / "home/demo/random.bin").write_bytes(os.urandom(64 * MiB))


def copy_sparse(source: Path, target_fd: int, offset: int) -> None:
    """Copy ``source``'s data extents into ``target_fd`` at ``offset``; holes stay holes."""
    fd = os.open(source, os.O_RDONLY)
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
                os.pwrite(target_fd, chunk, offset + start)
                start += len(chunk)
            position = end
    finally:
        os.close(fd)


def make_empty(path: Path, size: int) -> Path:
    """A new file of ``size`` bytes, all hole."""
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def make_disk(out: Path) -> Path:
    """The sample disk image; returns its path."""
    work = out / "parts"
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "rootfs"
    make_tree(tree)

    esp = make_empty(work / "esp.img", ESP[1])
    if shutil.which("mkfs.vfat"):
        run_tool(["mkfs.vfat", "-F", "32", "-n", "EFI", str(esp)])
    else:
        console.print("[yellow]mkfs.vfat not found: the EFI system partition stays empty[/]")

    root = make_empty(work / "root.img", ROOT[1])
    run_tool(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(tree), str(root)])

    disk = make_empty(out / "disk.img", DISK_SIZE)
    sector = SECTOR

    def span(part: tuple[int, int]) -> str:
        return f"{part[0] // sector}:{(part[0] + part[1]) // sector - 1}"

    run_tool(
        [
            "sgdisk",
            "--clear",
            f"--new=1:{span(ESP)}",
            "--typecode=1:ef00",
            "--change-name=1:EFI system partition",
            f"--new=2:{span(ROOT)}",
            "--typecode=2:8300",
            "--change-name=2:root",
            f"--new=3:{DATA_START // sector}:0",
            "--typecode=3:8300",
            "--change-name=3:data",
            str(disk),
        ]
    )
    fd = os.open(disk, os.O_WRONLY)
    try:
        copy_sparse(esp, fd, ESP[0])
        copy_sparse(root, fd, ROOT[0])
        # Random data at scattered offsets of the data partition, holes in between; one
        # piece is not block-aligned, so its block is sent with zeros around it.
        for n in range(8):
            os.pwrite(fd, os.urandom(4 * MiB), DATA_START + n * 100 * MiB)
        os.pwrite(fd, os.urandom(3000), DATA_START + 850 * MiB + 1234)
    finally:
        os.close(fd)
    shutil.rmtree(work)
    allocated = os.stat(disk).st_blocks * 512
    console.print(
        f"{disk}: {format_size(DISK_SIZE)} disk, {format_size(allocated)} allocated"
        " (the rest are holes, which read as zeros)"
    )
    return disk


# -- Azure side ---------------------------------------------------------------------------


def blob_sas_url(account_url: str) -> str:
    """A write SAS for the demo blob, on the gateway's address."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    now = datetime.now(UTC)
    sas = generate_blob_sas(
        AZURITE_ACCOUNT,
        CONTAINER,
        BLOB,
        account_key=AZURITE_KEY,
        permission=BlobSasPermissions(read=True, write=True, create=True),
        start=now - timedelta(minutes=5),
        expiry=now + timedelta(hours=2),
    )
    return f"{account_url}/{CONTAINER}/{BLOB}?{sas}"


def download_blob(connection_string: str, target: Path) -> int:
    """Download the blob's written pages into a sparse file; returns the blob's size."""
    from azure.storage.blob import BlobClient

    with BlobClient.from_connection_string(connection_string, CONTAINER, BLOB) as blob:
        size = blob.get_blob_properties().size
        target.unlink(missing_ok=True)
        with target.open("wb") as handle:
            handle.truncate(size)
            for page in blob.list_page_ranges():
                start, end = page.start or 0, page.end
                if end is None:
                    continue
                handle.seek(start)
                blob.download_blob(offset=start, length=end - start + 1).readinto(handle)
    return size


def check_with_qemu(disk: Path, vhd: Path) -> bool:
    if shutil.which("qemu-img") is None:
        console.print("[yellow]qemu-img not found: skipping the comparison[/]")
        return True
    compare = ["qemu-img", "compare", "-f", "raw", str(disk), "-F", "vpc", str(vhd)]
    show_command(shlex.join(compare))
    result = subprocess.run(compare, capture_output=True, text=True)
    console.print(Text((result.stdout + result.stderr).strip()))
    if "size mismatch" in result.stdout + result.stderr:
        console.print(
            "(the size warning is the VHD's padding to a whole MiB, which reads as zeros)",
            style="dim",
        )
    info = ["qemu-img", "info", "-f", "vpc", str(vhd)]
    show_command(shlex.join(info))
    subprocess.run(info, check=False)
    return result.returncode == 0


def upload_demo(disk: Path) -> None:
    step("starting Azurite and the strict gateway in front of it")
    with contextlib.ExitStack() as stack:
        azurite = stack.enter_context(AzuriteProcess())
        gateway = stack.enter_context(GatewayThread(azurite.account_url))
        console.print(f"Azurite at {azurite.account_url}, gateway at {gateway.account_url}")

        from azure.storage.blob import BlobServiceClient

        with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
            service.create_container(CONTAINER)
        url = blob_sas_url(gateway.account_url)

        step("uploading the disk as a fixed VHD page blob")
        started = time.monotonic()
        options = ("--max-bandwidth", RATE)
        status = run_child(
            azrestore("upload", str(disk), "--to", url, *options),
            shown=f"azrestore upload {disk} --to '{url}' {' '.join(options)}",
        )
        if status != 0:
            raise DemoError(f"azrestore upload exited with status {status}")
        seconds = time.monotonic() - started
        stats = gateway.statistics()
        sent = sum(stats.bytes_received.values())
        calls = ", ".join(f"{name} {count}" for name, count in sorted(stats.requests.items()))
        refused = sum(stats.rejections.values())
        console.print(
            f"the gateway saw {calls}; {format_size(sent)} of request bodies"
            f" for a {format_size(DISK_SIZE)} disk; {refused} refused; {seconds:.1f} s in all"
        )

        step("downloading the blob and checking it against the disk")
        vhd = OUT / BLOB
        size = download_blob(azurite.connection_string, vhd)
        console.print(f"{vhd}: {size:,} bytes (the written pages only, holes elsewhere)")
        identical = check_with_qemu(disk, vhd)

        blob_url = f"{gateway.account_url}/{CONTAINER}/{BLOB}"
        console.print(
            f"\nThe blob was {blob_url} (Azurite, stopped when the demo ends);"
            f" its copy is {vhd}. Check it again with:\n"
            f"  qemu-img compare -f raw {disk} -F vpc {vhd}\n"
            f"  qemu-img info -f vpc {vhd}"
        )
        if not identical:
            raise DemoError("qemu-img says the uploaded VHD differs from the disk")


def demo() -> None:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise DemoError(f"missing {', '.join(missing)} (run `make install`)")
    OUT.mkdir(exist_ok=True)

    step("making a sample sparse GPT disk image")
    disk = make_disk(OUT)

    step("inspecting it")
    status = run_child(azrestore("inspect", str(disk)), shown=f"azrestore inspect {disk}")
    if status != 0:
        raise DemoError(f"azrestore inspect exited with status {status}")

    upload_demo(disk)
    console.print("\n[bold green]demo done[/]")


def main() -> None:
    try:
        demo()
    except KeyboardInterrupt:
        print("\ndemo: interrupted; everything it started is stopped", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    except Exception as exc:  # one line, like the azrestore command itself
        print(f"demo: error: {redact_text(str(exc))}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
