"""Whether a PE/COFF image (an EFI boot loader) carries an Authenticode signature: its
optional header's security directory (data directory 4) points to a WIN_CERTIFICATE of
type PKCS_SIGNED_DATA holding a PKCS#7 SignedData.

Pure. It tells that a signature is there and well formed as a container; it does not
check the signature against the image's hash or any certificate chain (Azure's firmware
checks the chain against Microsoft's UEFI CA; nothing here can).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

_MZ = b"MZ"
_PE = b"PE\x00\x00"
_PE32 = 0x10B
_PE32_PLUS = 0x20B
_SECURITY_DIRECTORY = 4
#: WIN_CERT_TYPE_PKCS_SIGNED_DATA; revisions 1.0 and 2.0
_PKCS_SIGNED_DATA = 0x0002
_REVISIONS = (0x0100, 0x0200)
#: DER of the OID 1.2.840.113549.1.7.2 (signedData)
_SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")
MACHINES = {0x14C: "x86", 0x8664: "x64", 0xAA64: "arm64", 0x1C4: "arm"}


@dataclass(frozen=True, slots=True)
class PeSignature:
    """What :func:`pe_signature` found: ``is_pe`` (a PE/COFF image at all), its machine,
    ``signed`` (an Authenticode signature is present), and in words why."""

    is_pe: bool
    signed: bool
    detail: str
    machine: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "is_pe": self.is_pe,
            "signed": self.signed,
            "machine": self.machine,
            "detail": self.detail,
        }


def _not_pe(why: str) -> PeSignature:
    return PeSignature(is_pe=False, signed=False, detail=f"not a PE image ({why})")


def pe_signature(image: bytes) -> PeSignature:
    """Read a PE image's headers and its security directory."""
    if len(image) < 64 or image[:2] != _MZ:
        return _not_pe("no MZ header")
    pe_at = struct.unpack_from("<I", image, 0x3C)[0]
    if pe_at + 24 > len(image) or image[pe_at : pe_at + 4] != _PE:
        return _not_pe("no PE signature")
    machine_code, _, _, _, _, optional_size, _ = struct.unpack_from("<HHIIIHH", image, pe_at + 4)
    machine = MACHINES.get(machine_code, f"0x{machine_code:04x}")
    optional = pe_at + 24
    if optional_size < 2 or optional + optional_size > len(image):
        return _not_pe("its optional header is cut short")
    magic = struct.unpack_from("<H", image, optional)[0]
    if magic not in (_PE32, _PE32_PLUS):
        return _not_pe(f"optional header magic 0x{magic:04x}")
    count_at, directories = (92, 96) if magic == _PE32 else (108, 112)
    if optional_size < directories:
        return _not_pe("its optional header has no data directories")
    count = struct.unpack_from("<I", image, optional + count_at)[0]
    entry = directories + 8 * _SECURITY_DIRECTORY
    if count <= _SECURITY_DIRECTORY or optional_size < entry + 8:
        return PeSignature(True, False, "unsigned (no security directory)", machine)
    offset, size = struct.unpack_from("<II", image, optional + entry)
    if size == 0:
        return PeSignature(True, False, "unsigned (empty security directory)", machine)
    if offset + size > len(image) or size < 8:
        return PeSignature(
            True, False, "unsigned (its security directory lies outside the file)", machine
        )
    length, revision, kind = struct.unpack_from("<IHH", image, offset)
    if not 8 < length <= size or revision not in _REVISIONS:
        return PeSignature(True, False, "unsigned (a malformed WIN_CERTIFICATE)", machine)
    if kind != _PKCS_SIGNED_DATA:
        return PeSignature(
            True, False, f"unsigned (certificate type 0x{kind:04x}, not PKCS#7)", machine
        )
    body = image[offset + 8 : offset + length]
    if not body.startswith(b"\x30") or _SIGNED_DATA_OID not in body[:32]:
        return PeSignature(
            True, False, "unsigned (the certificate is no PKCS#7 SignedData)", machine
        )
    return PeSignature(True, True, "Authenticode-signed (PKCS#7 SignedData present)", machine)
