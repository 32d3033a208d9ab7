"""A fixed VHD read directly: its data is the file less its 512-byte footer, so it is read
as a raw image cut short (preadv, SEEK_DATA/SEEK_HOLE), with no qemu-nbd in between. Its
virtual size is what qemu's vpc driver gives a fixed VHD: the file's size less the footer.
"""

from __future__ import annotations

import os
import stat

from ..errors import InputError, unreadable_file
from ..formats.sizes import FOOTER_SIZE, SECTOR
from .base import ChainLink
from .closing import ClosedOnExit
from .raw import RawImage, _check_kind

TYPE_CHECKING = False
if TYPE_CHECKING:
    pass


class FixedVhdImage(ClosedOnExit):
    """The data of a fixed VHD (format ``vpc``): a raw image without its footer."""

    def __init__(self, raw: RawImage, size: int) -> None:
        self._raw = raw
        self.path = raw.path
        self.size = size
        self.is_block_device = raw.is_block_device
        self.files = () if raw.is_block_device else (raw.path,)

    @property
    def format(self) -> str:
        return "vpc"

    @property
    def chain(self) -> tuple[ChainLink, ...]:
        return (ChainLink(self.path, "vpc"),)

    @classmethod
    def open(cls, path: str) -> FixedVhdImage:
        """Open a fixed VHD (its footer already recognised by signature)."""
        try:
            _check_kind(path, os.stat(path).st_mode)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except PermissionError:
            raise InputError(f"{path}: permission denied") from None
        except OSError as exc:
            raise unreadable_file(path, exc, action="open") from None
        try:
            info = os.fstat(fd)
            _check_kind(path, info.st_mode)
            os.set_blocking(fd, True)
            is_block = stat.S_ISBLK(info.st_mode)
            length = os.lseek(fd, 0, os.SEEK_END) if is_block else info.st_size
        except BaseException:
            os.close(fd)
            raise
        raw = RawImage(path, fd, length, is_block_device=is_block)
        size = length - FOOTER_SIZE
        if size <= 0 or size % SECTOR:
            raw.close()
            raise InputError(
                f"{path}: a fixed VHD of {length} bytes: its data is not whole sectors"
            )
        return cls(raw, size)

    def fileno(self) -> int:
        return self._raw.fileno()

    def data_extents(self) -> list[tuple[int, int]]:
        extents = []
        for offset, length in self._raw.data_extents():
            end = min(offset + length, self.size)
            if end > offset:
                extents.append((offset, end - offset))
        return extents

    def allocated_bytes(self) -> int:
        return sum(length for _, length in self.data_extents())

    def read_into(self, buffer: memoryview, offset: int) -> int:
        want = max(0, min(len(buffer), self.size - offset))
        got = self._raw.read_into(buffer[:want], offset) if want else 0
        if want < len(buffer):
            buffer[want:] = bytes(len(buffer) - want)
        return got

    def read_at(self, offset: int, length: int) -> bytes:
        return self._raw.read_at(offset, max(0, min(length, self.size - offset)))

    def close(self) -> None:
        self._raw.close()

    def __repr__(self) -> str:
        return f"FixedVhdImage({self.path!r}, size={self.size})"
