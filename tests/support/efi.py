"""EFI boot loaders for the secure boot tests: a minimal PE32+ EFI application (the demo's)
signed with ``sbsign`` (Debian's sbsigntool) under a throwaway key made by ``openssl``,
checked with ``sbverify`` (tools independent of azrestore's and the emulator's readers),
and put on a FAT EFI system partition with mtools (``mmd``/``mcopy``, no mount)."""

from __future__ import annotations

from pathlib import Path

from azrestore.cli.demo.efisign import efi_application as efi_application
from azrestore.formats.sizes import MiB
from tests.support.disks import mkfs, put, run
from tests.support.guestimages import linux_disk

#: Tools these helpers run.
TOOLS = ("openssl", "sbsign", "sbverify", "mkfs.vfat", "mmd", "mcopy")


def test_key(work: Path) -> tuple[Path, Path]:
    """A throwaway signing key and its self-signed certificate (PEM)."""
    key, cert = work / "db.key", work / "db.crt"
    if not cert.exists():
        run(
            "openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=azrestore test db", "-keyout", str(key), "-out", str(cert),
        )  # fmt: skip
    return key, cert


def signed(work: Path, loader: bytes, name: str = "loader.efi") -> bytes:
    """``loader`` signed with :func:`test_key` by sbsign, checked by sbverify."""
    key, cert = test_key(work)
    plain, out = work / f"{name}.unsigned", work / f"{name}.signed"
    plain.write_bytes(loader)
    run("sbsign", "--key", str(key), "--cert", str(cert), "--output", str(out), str(plain))
    run("sbverify", "--cert", str(cert), str(out))  # fails the test if it is not signed
    return out.read_bytes()


def esp_image(work: Path, files: dict[str, bytes], *, size: int = 16 * MiB) -> Path:
    """A FAT EFI system partition holding ``files`` (``EFI/BOOT/BOOTX64.EFI``: bytes)."""
    esp = mkfs(work, "vfat", size)
    made: set[str] = set()
    for name, data in files.items():
        parts = name.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in made:
                run("mmd", "-i", str(esp), f"::/{folder}")
                made.add(folder)
        source = work / "esp-file"
        source.write_bytes(data)
        run("mcopy", "-i", str(esp), str(source), f"::/{name}")
    return esp


def uefi_linux_disk(work: Path, name: str, files: dict[str, bytes]) -> Path:
    """A Gen2 Linux disk with a guest agent (see
    :func:`~tests.support.guestimages.linux_disk`) whose ESP holds ``files``."""
    disk = linux_disk(work, name, agent=True)
    put(disk, MiB, esp_image(work, files))
    return disk
