"""File systems recognised by their signatures, in partitions and on whole disks."""

from __future__ import annotations

from pathlib import Path

import pytest

from azrestore.formats.filesystems import sniff_filesystem
from azrestore.formats.sizes import MiB
from tests.support.disks import mkfs, needs_tools
from tests.support.partitions import analyze


def test_sniff_signatures() -> None:
    def at(offset: int, data: bytes, size: int = 4096) -> bytes:
        buffer = bytearray(size)
        buffer[offset : offset + len(data)] = data
        return bytes(buffer)

    assert sniff_filesystem(at(0, b"XFSB")) == "xfs"
    assert sniff_filesystem(at(4086, b"SWAPSPACE2")) == "swap"
    assert sniff_filesystem(at(4086, b"SWAP-SPACE")) == "swap"
    assert sniff_filesystem(at(0, b"LUKS\xba\xbe")) == "crypto_LUKS"
    assert sniff_filesystem(at(3, b"-FVE-FS-")) == "BitLocker"
    assert sniff_filesystem(at(3, b"EXFAT   ")) == "exfat"
    assert sniff_filesystem(at(54, b"FAT12   ")) == "fat12"
    assert sniff_filesystem(bytes(4096), btrfs_magic=b"_BHRfS_M") == "btrfs"
    ext = at(1024 + 56, b"\x53\xef")
    assert sniff_filesystem(ext) == "ext2"
    ext3 = bytearray(ext)
    ext3[1024 + 0x5C] = 0x04  # has_journal
    assert sniff_filesystem(bytes(ext3)) == "ext3"
    ext3[1024 + 0x60] = 0x40  # extents
    assert sniff_filesystem(bytes(ext3)) == "ext4"
    assert sniff_filesystem(bytes(4096)) is None
    assert sniff_filesystem(b"") is None


@needs_tools
@pytest.mark.parametrize(("kind", "family"), [("ext4", "linux"), ("ntfs", "windows")])
def test_whole_disk_file_system(tmp_path: Path, kind: str, family: str) -> None:
    """No table, a file system on the whole disk (an NTFS boot sector ends in 0x55AA
    like an MBR, and must not be read as one)."""
    disk = mkfs(tmp_path, kind, 32 * MiB)
    layout = analyze(disk)
    assert (layout.scheme, layout.filesystem, layout.os_family) == ("none", kind, family)
    assert layout.partitions == ()
