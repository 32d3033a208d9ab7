"""Azure's size rules for a disk, per target: a page blob, a managed disk made by direct
upload, an OS disk of each generation, a fixed VHD file for Azure. Each check returns the
rule a disk breaks, in words, or None (pure: the callers raise, naming the image)."""

from __future__ import annotations

from .sizes import MAX_PAGE_BLOB, TiB, blob_size, format_size, virtual_size

#: Azure's bounds on a managed disk's ``uploadSizeBytes`` (virtual size + 512), with the
#: virtual size a whole number of MiB. Azure calls them "20 MiB + 512 bytes" and "32 TiB +
#: 512 bytes"; the upper one is exactly 32,767 GiB + 512 bytes.
MIN_UPLOAD_SIZE = 20_972_032
MAX_UPLOAD_SIZE = 35_183_298_347_520
#: The smallest and largest managed disk (virtual size).
MIN_MANAGED_DISK = MIN_UPLOAD_SIZE - 512
MAX_MANAGED_DISK = MAX_UPLOAD_SIZE - 512
#: An OS disk is at most 4 TiB, and over 2 TiB only on generation V2 (UEFI, GPT).
MAX_OS_DISK = 4 * TiB
MAX_GEN1_OS_DISK = 2 * TiB


def page_blob_problem(disk_size: int) -> str | None:
    """The rule a disk of ``disk_size`` bytes breaks as a fixed VHD in a page blob: the
    blob (virtual size + footer) is at most 8 TiB."""
    if blob_size(disk_size) > MAX_PAGE_BLOB:
        return (
            f"{format_size(disk_size)} is larger than a page blob can hold (a page blob is"
            " at most 8 TiB, the VHD footer included); a managed disk takes up to 32 TiB"
        )
    return None


def managed_disk_problem(disk_size: int) -> str | None:
    """The rule a disk breaks as a managed disk made by direct upload: its upload size
    (virtual size + 512) is 20,972,032 to 35,183,298,347,520 bytes."""
    size = blob_size(disk_size)
    if not MIN_UPLOAD_SIZE <= size <= MAX_UPLOAD_SIZE:
        rule = f"between {MIN_UPLOAD_SIZE:,} and {MAX_UPLOAD_SIZE:,} bytes"
        return (
            f"a managed disk upload must be {rule} (Azure's 20 MiB + 512 to 32 TiB + 512:"
            " a disk of 20 MiB to 32,767 GiB and the footer); this disk's VHD is"
            f" {size:,} bytes ({format_size(size)})"
        )
    return None


def os_disk_problem(disk_size: int, generation: str) -> str | None:
    """The rule an OS disk breaks: at most 4 TiB, and over 2 TiB only on generation V2."""
    size = virtual_size(disk_size)
    if size > MAX_OS_DISK:
        return f"is {format_size(size)}: an OS disk is at most 4 TiB"
    if size > MAX_GEN1_OS_DISK and generation != "V2":
        return f"is {format_size(size)}: an OS disk over 2 TiB needs generation V2 (UEFI, GPT)"
    return None


def vhd_file_problem(disk_size: int) -> str | None:
    """The rule a disk breaks as a fixed VHD file for Azure: no larger than the largest
    disk Azure takes (a managed disk's, 32,767 GiB; qemu's 2040 GiB cap on VHD is
    qemu's own)."""
    if virtual_size(disk_size) > MAX_MANAGED_DISK:
        return (
            f"{format_size(disk_size)} is larger than any disk Azure takes (a managed disk is"
            " at most 32 TiB: 32,767 GiB)"
        )
    return None
