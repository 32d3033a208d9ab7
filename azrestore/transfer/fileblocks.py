"""Sharing and allocating a file's blocks for a copy into it: reflinks (FICLONERANGE)
where the file system shares blocks between files, and fallocate(2) of the extents that
will be written."""

from __future__ import annotations

import errno
import os

#: FICLONERANGE, from linux/fs.h: _IOW(0x94, 13, struct file_clone_range).
_FICLONERANGE = 0x4020940D


def clone_extents(
    src: int, dst: int, extents: list[tuple[int, int]]
) -> tuple[int, list[tuple[int, int]]]:
    """Reflink the data extents into the output where the file system shares blocks
    between files (XFS, btrfs, bcachefs; what copy_file_range does there): nothing is
    read or written, and the VHD takes no space of its own until either file changes.

    Returns the bytes cloned and the extents left to copy: each extent's tail short of a
    whole block, and everything after a refusal that says this file system, or this pair
    of files, cannot share blocks (on ext4 the first call says so, in microseconds).
    """
    if not extents:
        return 0, extents
    import fcntl
    import struct

    block = os.fstatvfs(dst).f_frsize or 4096
    cloned = 0
    rest: list[tuple[int, int]] = []
    for index, (offset, length) in enumerate(extents):
        whole = length - length % block
        if whole == 0 or offset % block:
            rest.append((offset, length))
            continue
        request = struct.pack("=qQQQ", src, offset, whole, offset)
        try:
            fcntl.ioctl(dst, _FICLONERANGE, request)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
                raise
            rest.append((offset, length))
            if exc.errno != errno.EINVAL:  # EINVAL: this range only (alignment)
                rest.extend(extents[index + 1 :])
                break
            continue
        cloned += whole
        if whole < length:
            rest.append((offset + whole, length - whole))
    return cloned, rest


def preallocate(fd: int, extents: list[tuple[int, int]]) -> None:
    """Allocate the output's data extents before they are written (holes stay holes).

    ext4 then does no delayed allocation per block written, which makes the copy faster
    (docs/benchmarks.md). fallocate(2) is called through ctypes because
    os.posix_fallocate falls back to writing a byte per block where the file system has
    no fallocate. A file system without room raises (ENOSPC, EDQUOT) before any data is
    written; any other refusal only skips the preallocation.
    """
    try:
        import ctypes

        fallocate = ctypes.CDLL(None, use_errno=True).fallocate
    except (ImportError, OSError, AttributeError):  # no ctypes, or a libc without it
        return
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fallocate.restype = ctypes.c_int
    for offset, length in extents:
        if fallocate(fd, 0, offset, length) != 0:
            code = ctypes.get_errno()
            if code in (errno.ENOSPC, errno.EDQUOT):
                raise OSError(code, os.strerror(code))
            return
