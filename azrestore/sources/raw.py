"""A raw disk image (a regular file or a block device).

The blocking calls here (open, lseek, preadv) are meant to run in a worker thread;
:func:`open_raw_image` does that for the open and its checks.
"""

from __future__ import annotations

import errno
import os
import stat

from ..errors import InputError, unreadable_file
from ..formats.containers import detect_container
from ..formats.sizes import SECTOR, KiB
from .closing import ClosedOnExit

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from .base import ChainLink

_HEAD = 64 * KiB


class RawImage(ClosedOnExit):
    """An open raw disk image. Use :func:`open_raw_image` (or :meth:`open`) to get one.

    ``path`` is the path it was opened by, as a string (no pathlib: ``convert`` starts
    without it)."""

    def __init__(self, path: str, fd: int, size: int, *, is_block_device: bool) -> None:
        self.path = path
        self.size = size
        self.is_block_device = is_block_device
        self._fd = fd

    @property
    def format(self) -> str:
        return "raw"

    @property
    def chain(self) -> tuple[ChainLink, ...]:
        from .base import ChainLink  # here: the quick convert start loads no dataclasses

        return (ChainLink(self.path, "raw"),)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RawImage:
        """Open and check an image; raise :class:`InputError` naming the path when it is
        missing, not a regular file or block device (a directory, FIFO, socket or
        character device: refused before it is opened, so that a FIFO without a writer
        cannot hang the open), unreadable, empty, or a
        container format (VHD, VHDX, qcow2, VMDK, VDI) rather than raw."""
        image_path = os.fspath(path)
        try:
            _check_kind(image_path, os.stat(image_path).st_mode)
            # O_NONBLOCK: a FIFO put in its place after the check does not block the open.
            fd = os.open(image_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        except FileNotFoundError:
            raise InputError(f"{image_path}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"{image_path}: is a directory, not a disk image") from None
        except PermissionError:
            raise InputError(f"{image_path}: permission denied") from None
        except OSError as exc:
            raise unreadable_file(image_path, exc, action="open") from None
        try:
            info = os.fstat(fd)
            _check_kind(image_path, info.st_mode)  # what was opened, not what was seen
            os.set_blocking(fd, True)
            is_block = stat.S_ISBLK(info.st_mode)
            size = os.lseek(fd, 0, os.SEEK_END) if is_block else info.st_size
            if size == 0:
                raise InputError(f"{image_path}: is empty")
            image = cls(image_path, fd, size, is_block_device=is_block)
            try:
                head = image.read_at(0, min(_HEAD, size))
                tail = image.read_at(max(0, size - SECTOR), min(SECTOR, size))
            except OSError as exc:
                raise unreadable_file(image_path, exc) from None
            container = detect_container(head, tail)
            if container is not None:
                raise InputError(
                    f"{image_path}: is a {container} image, not a raw disk"
                    " (convert it to raw first, e.g. qemu-img convert -O raw)"
                )
        except BaseException:
            os.close(fd)
            raise
        return image

    def fileno(self) -> int:
        return self._fd

    def data_extents(self) -> list[tuple[int, int]]:
        """``(offset, length)`` of the allocated regions, in order, via SEEK_DATA/SEEK_HOLE.

        Where the file system cannot tell (or for a block device), the whole image is one
        extent. Holes read as zeros and are never read.
        """
        if self.is_block_device:
            return [(0, self.size)]
        extents: list[tuple[int, int]] = []
        offset = 0
        try:
            while offset < self.size:
                try:
                    start = os.lseek(self._fd, offset, os.SEEK_DATA)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:  # no data after offset
                        break
                    raise
                end = min(os.lseek(self._fd, start, os.SEEK_HOLE), self.size)
                if end > start:
                    extents.append((start, end - start))
                offset = end
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                return [(0, self.size)]
            raise
        return extents

    def allocated_bytes(self) -> int:
        return sum(length for _, length in self.data_extents())

    def read_into(self, buffer: memoryview, offset: int) -> int:
        """Fill ``buffer`` from ``offset`` with preadv; bytes past the end of the image are
        zeroed. Returns the number of bytes that came from the file."""
        total = 0
        want = len(buffer)
        while total < want:
            got = os.preadv(self._fd, [buffer[total:]], offset + total)
            if got == 0:
                break
            total += got
        if total < want:
            buffer[total:] = bytes(want - total)
        return total

    def read_at(self, offset: int, length: int) -> bytes:
        """Read up to ``length`` bytes at ``offset`` (short at the end of the image)."""
        return os.pread(self._fd, length, offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __repr__(self) -> str:
        return f"RawImage({self.path!r}, size={self.size})"


def _check_kind(path: str, mode: int) -> None:
    """Refuse anything but a regular file or a block device, naming what it is."""
    if stat.S_ISREG(mode) or stat.S_ISBLK(mode):
        return
    if stat.S_ISDIR(mode):
        what = "a directory"
    elif stat.S_ISFIFO(mode):
        what = "a FIFO (named pipe)"
    elif stat.S_ISSOCK(mode):
        what = "a socket"
    elif stat.S_ISCHR(mode):
        what = "a character device"
    else:
        what = "neither a regular file nor a block device"
    raise InputError(
        f"{path}: is {what}, not a disk image (a regular file or a block device, which"
        " can be read at any offset)"
    )


async def open_raw_image(path: str | os.PathLike[str]) -> RawImage:
    """Open and check a raw image off the event loop (see :meth:`RawImage.open`)."""
    import anyio.to_thread  # here, so that the blocking convert starts without anyio

    return await anyio.to_thread.run_sync(RawImage.open, path)


class BufferPool:
    """Fixed-size reusable buffers, so a transfer allocates ``count`` chunks once.

    Callers bound how many buffers are out at a time (the pipeline takes its concurrency
    slot first), so :meth:`take` never waits; it allocates lazily up to ``count``.
    """

    def __init__(self, count: int, size: int) -> None:
        self.count = count
        self.size = size
        self._free: list[bytearray] = []
        self._allocated = 0

    def take(self) -> bytearray:
        if self._free:
            return self._free.pop()
        if self._allocated >= self.count:
            raise RuntimeError("buffer pool exhausted: more buffers taken than slots")
        self._allocated += 1
        return bytearray(self.size)

    def give(self, buffer: bytearray) -> None:
        self._free.append(buffer)
