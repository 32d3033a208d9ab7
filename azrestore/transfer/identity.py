"""What a source image is, so that a journal is only resumed onto the very same data.

A regular file is known by its inode, size, modification time, change time (``ctime``:
the kernel sets it on every write or metadata change, and no user can set it back, so a
rewrite whose ``mtime`` was restored with ``touch -r`` is still seen) and a digest of
sampled blocks. A block device's node says nothing of its content, so a device is also
known by its device number, the kernel's disk sequence number (a new one each time a
disk is attached or its medium changes), the machine's boot and the sectors the kernel
has written to or discarded on it since boot (:mod:`.blockstate`).

A container image (qcow2, VMDK, ...) is known by its format, its virtual size, every host
file it reads (each one's path, size, times, inode and device: the whole backing chain,
a data file, a VMDK's extents) and sampled blocks of the virtual disk; an NBD export by its
URL, size and sampled blocks (nothing else of a server's disk can be seen from here).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import unreadable_file
from ..formats.sizes import KiB
from ..sources.base import DiskSource
from ..sources.raw import RawImage
from .blockstate import BlockState, block_state

#: Blocks sampled for the digest: the first and last 64 KiB and this many 4 KiB blocks
#: spread evenly in between. Cheap (holes cost nothing to read), and a source rewritten in
#: place with the same size and a restored mtime is still likely to be caught.
_SAMPLES = 64
_SAMPLE_BLOCK = 4 * KiB
_EDGE = 64 * KiB


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """One host file of a container image: its path, size, times, inode and device."""

    path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: str) -> FileIdentity:
        info = os.stat(path)
        return cls(
            os.path.realpath(path),
            info.st_size,
            info.st_mtime_ns,
            info.st_ctime_ns,
            info.st_ino,
            info.st_dev,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileIdentity:
        return cls(
            path=str(data["path"]),
            size=int(data["size"]),
            mtime_ns=int(data["mtime_ns"]),
            ctime_ns=int(data["ctime_ns"]),
            inode=int(data["inode"]),
            device=int(data["device"]),
        )

    def differences(self, other: FileIdentity) -> list[str]:
        """What differs, in words that follow "its file PATH"."""
        found = []
        if self.size != other.size:
            found.append(f"is {other.size} bytes now, not {self.size}")
        if self.inode != other.inode or self.device != other.device:
            found.append("is another file (inode changed)")
        if self.mtime_ns != other.mtime_ns:
            found.append("was modified (mtime changed)")
        elif self.ctime_ns != other.ctime_ns:
            found.append("was modified (ctime changed)")
        return found


@dataclass(frozen=True, slots=True)
class SourceIdentity:
    """A source image's path, size, modification and change times, inode, a digest of
    sampled blocks and, for a block device, what the kernel knows of it (``block``).

    ``ctime_ns`` is None only in a journal written by an azrestore that did not record
    it: such a journal is never resumed (nothing would notice a rewrite with a restored
    mtime)."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int
    sample_digest: str
    ctime_ns: int | None = None
    block: BlockState | None = None
    format: str = "raw"
    files: tuple[FileIdentity, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = [asdict(item) for item in self.files]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourceIdentity:
        ctime = data.get("ctime_ns")
        block = data.get("block")
        return cls(
            path=str(data["path"]),
            size=int(data["size"]),
            mtime_ns=int(data["mtime_ns"]),
            inode=int(data["inode"]),
            device=int(data["device"]),
            sample_digest=str(data["sample_digest"]),
            ctime_ns=None if ctime is None else int(ctime),
            block=None if block is None else BlockState.from_json(block),
            format=str(data.get("format", "raw")),
            files=tuple(FileIdentity.from_json(item) for item in data.get("files", ())),
        )

    def differences(self, other: SourceIdentity) -> list[str]:
        """What differs between ``self`` (recorded) and ``other`` (now), in words."""
        found = []
        if self.path != other.path:
            found.append(f"is at another path ({other.path}, was {self.path})")
        if self.format != other.format:
            found.append(f"is a {other.format} image now, not {self.format}")
        if self.size != other.size:
            found.append(f"is {other.size} bytes now, not {self.size}")
        if self.inode != other.inode or self.device != other.device:
            found.append("is another file (inode changed)")
        if self.mtime_ns != other.mtime_ns:
            found.append("was modified (mtime changed)")
        elif self.ctime_ns is None:
            found.append(
                "cannot be told unchanged: the journal was written by an older azrestore,"
                " which kept no change time (ctime)"
            )
        elif self.ctime_ns != other.ctime_ns:
            found.append("was modified (ctime changed: written to, or its metadata changed)")
        if self.block != other.block:
            found.extend(_block_differences(self.block, other.block))
        found.extend(_file_differences(self.files, other.files))
        if self.sample_digest != other.sample_digest:
            found.append("has other content (sampled blocks differ)")
        return found


def _block_differences(recorded: BlockState | None, now: BlockState | None) -> list[str]:
    if recorded is None or now is None:
        return ["is another kind of file (a block device then or now, not both)"]
    return recorded.differences(now)


def _file_differences(
    recorded: tuple[FileIdentity, ...], now: tuple[FileIdentity, ...]
) -> list[str]:
    """How the files of a container image changed: another chain, or a file modified."""
    if [item.path for item in recorded] != [item.path for item in now]:
        was = ", ".join(item.path for item in recorded) or "none"
        return [f"is made of other files now (its chain was: {was})"]
    found: list[str] = []
    for then, current in zip(recorded, now, strict=True):
        found.extend(f"file {then.path} {change}" for change in then.differences(current))
    return found


def source_identity(image: DiskSource) -> SourceIdentity:
    """The identity of an open source (blocking: call it in a worker thread)."""
    if isinstance(image, RawImage):
        info = os.fstat(image.fileno())
        # Read before sampling: a write that lands while the blocks are read moves it after.
        block = block_state(info.st_rdev) if image.is_block_device else None
        return _identity(image, info, block=block)
    names: tuple[str, ...] = getattr(image, "files", ())
    # Files first, then the blocks: a write landing in between changes what is recorded.
    try:
        files = tuple(FileIdentity.of(name) for name in names)
    except OSError as exc:
        raise unreadable_file(exc.filename or image.path, exc, action="look at") from None
    if not files:  # an NBD export: its URL, size and sampled blocks
        return _identity(image, None, files=files, path=image.path)
    return _identity(image, os.stat(names[0]), files=files)


def _identity(
    image: DiskSource,
    info: os.stat_result | None,
    *,
    block: BlockState | None = None,
    files: tuple[FileIdentity, ...] = (),
    path: str | None = None,
) -> SourceIdentity:
    digest = hashlib.sha256(image.size.to_bytes(8, "little"))
    size = image.size
    offsets = [0, max(0, size - _EDGE)]
    step = max(1, size // (_SAMPLES + 1))
    offsets.extend(step * (i + 1) // _SAMPLE_BLOCK * _SAMPLE_BLOCK for i in range(_SAMPLES))
    for offset in offsets:
        length = _EDGE if offset in (0, max(0, size - _EDGE)) else _SAMPLE_BLOCK
        digest.update(image.read_at(offset, min(length, size - offset)))
    return SourceIdentity(
        path=path if path is not None else os.path.realpath(image.path),
        size=size,
        mtime_ns=0 if info is None else info.st_mtime_ns,
        inode=0 if info is None else info.st_ino,
        device=0 if info is None else info.st_dev,
        sample_digest=digest.hexdigest(),
        ctime_ns=0 if info is None else info.st_ctime_ns,
        block=block,
        format=image.format,
        files=files,
    )
