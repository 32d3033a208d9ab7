"""The Linux image's boot loaders: small PE32+ EFI applications, signed with ``sbsign``
under a demo key made by ``openssl`` for the build, so that the restore finds a signed boot
chain and makes web01 Trusted Launch with secure boot on (the key is the demo's own, not
Microsoft's: Azure's firmware would refuse it; the emulator checks that a signature is
there)."""

from __future__ import annotations

import struct
from pathlib import Path

from .tools import run_tool

#: Tools the signing runs (``make install`` provides them: openssl, sbsigntool).
SIGN_TOOLS = ("openssl", "sbsign")


def efi_application(code: bytes = b"\x31\xc0\xc3", *, padding: int = 0) -> bytes:
    """A PE32+ x64 EFI application: headers and one .text section holding ``code``
    (``padding`` more bytes of int3 make it bigger, as real loaders are)."""
    text = code.ljust(-(-(len(code) + padding + 1) // 0x200) * 0x200, b"\xcc")
    image_size = 0x1000 + -(-len(text) // 0x1000) * 0x1000
    dos = bytearray(0x80)
    dos[:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x80)
    coff = struct.pack("<4sHHIIIHH", b"PE\0\0", 0x8664, 1, 0, 0, 0, 240, 0x0206)
    optional = bytearray(240)
    # magic, linker version, size of code, of data (2), entry point, base of code
    struct.pack_into("<HBBIIIII", optional, 0, 0x20B, 0, 0, len(text), 0, 0, 0x1000, 0x1000)
    struct.pack_into("<QII", optional, 24, 0x10000000, 0x1000, 0x200)  # base, alignments
    # size of image, of headers, checksum, subsystem 10 (EFI application)
    struct.pack_into("<IIIH", optional, 56, image_size, 0x200, 0, 10)
    struct.pack_into("<QQQQII", optional, 72, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
    section = struct.pack(
        "<8sIIIIIIHHI", b".text", len(text), 0x1000, len(text), 0x200, 0, 0, 0, 0, 0x60000020
    )
    headers = bytes(dos) + coff + bytes(optional) + section
    return headers.ljust(0x200, b"\0") + text


def demo_key(work: Path) -> tuple[Path, Path]:
    """A signing key and its self-signed certificate, made for this build."""
    key, cert = work / "demo-db.key", work / "demo-db.crt"
    if not cert.exists():
        run_tool(
            [
                *("openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes"),
                *("-days", "30", "-subj", "/CN=azrestore demo db"),
                *("-keyout", str(key), "-out", str(cert)),
            ]
        )
    return key, cert


def signed_loader(work: Path, name: str, *, padding: int = 0) -> bytes:
    """An EFI application signed with :func:`demo_key` by sbsign."""
    key, cert = demo_key(work)
    plain, out = work / f"{name}.unsigned", work / f"{name}.signed"
    plain.write_bytes(efi_application(padding=padding))
    run_tool(["sbsign", "--key", str(key), "--cert", str(cert), "--output", str(out), str(plain)])
    data = out.read_bytes()
    plain.unlink()
    out.unlink()
    return data
