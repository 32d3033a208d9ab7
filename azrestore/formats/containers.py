"""Recognise disk-image container formats by their signatures, so that a VHD, VHDX, qcow2,
VMDK or VDI file is not uploaded as if it were a raw disk.

Only signatures that a raw disk does not plausibly start (or end) with are used: a raw
disk begins with an MBR, a protective MBR or a file system, never with these magics.
Compressed archives are out of scope.
"""

from __future__ import annotations

import struct

_VHD_COOKIE = b"conectix"
_VHD_DISK_TYPES = {2: "VHD (fixed)", 3: "VHD (dynamic)", 4: "VHD (differencing)"}
_VDI_SIGNATURE = 0xBEDA107F

#: qemu's format name for each container :func:`detect_container` names that azrestore
#: reads through qemu-nbd; differencing VHDs (and VHDXs), which qemu does not read, are
#: read by azrestore itself; the others (qcow version 1, QED, Parallels) it refuses.
QEMU_FORMATS = {
    "VHD (fixed)": "vpc",
    "VHD (dynamic)": "vpc",
    "VHDX": "vhdx",
    "qcow2": "qcow2",
    "VMDK": "vmdk",
    "VDI": "vdi",
}


def _vhd_name(footer: bytes, default: str) -> str:
    if len(footer) >= 64:
        (disk_type,) = struct.unpack_from(">I", footer, 60)
        return _VHD_DISK_TYPES.get(disk_type, default)
    return default


def detect_container(head: bytes, tail: bytes) -> str | None:
    """Name the container format whose signature ``head`` (a file's first up to 64 KiB)
    or ``tail`` (its last up to 512 bytes) shows, or None for what looks like raw data.

    Names: ``VHD (fixed)``, ``VHD (dynamic)``, ``VHD (differencing)``, ``VHDX``,
    ``qcow``, ``qcow2``, ``QED``, ``VMDK``, ``VDI``, ``Parallels``.
    """
    if head.startswith(_VHD_COOKIE):
        # Dynamic and differencing VHDs keep a copy of the footer at offset 0.
        return _vhd_name(head[:512], "VHD (dynamic)")
    if head.startswith(b"vhdxfile"):
        return "VHDX"
    if head.startswith(b"QFI\xfb") and len(head) >= 8:
        # As qemu probes it: the magic and a version it knows (1: qcow; 2, 3: qcow2).
        version = struct.unpack_from(">I", head, 4)[0]
        if version == 1:
            return "qcow"
        if version in (2, 3):
            return "qcow2"
    if head.startswith(b"QED\x00"):
        return "QED"
    # VMDK: a sparse extent ("KDMV", also streamOptimized), an ESX COW sparse extent, or a
    # text descriptor pointing at flat extents.
    if head.startswith((b"KDMV", b"COWD", b"# Disk DescriptorFile")):
        return "VMDK"
    # VDI: a text banner ("<<< Oracle VM VirtualBox Disk Image >>>", qemu writes "<<< QEMU
    # VM Virtual Disk Image >>>") then the signature 0xbeda107f (little-endian) at 64.
    if len(head) >= 68 and struct.unpack_from("<I", head, 64)[0] == _VDI_SIGNATURE:
        return "VDI"
    if head.startswith(b"<<< ") and b"Disk Image >>>" in head[:64]:
        return "VDI"
    if head.startswith((b"WithoutFreeSpace", b"WithouFreSpacExt")):
        return "Parallels"
    # A fixed VHD has its only footer at the end; Virtual PC before 2004 wrote a 511-byte
    # footer, so the cookie may start 511 bytes from the end too.
    for size in (512, 511):
        if len(tail) >= size and tail[-size:].startswith(_VHD_COOKIE):
            return _vhd_name(tail[-size:], "VHD (fixed)")
    return None
