"""What a source image is, so that a journal is only resumed onto the very same data.

A regular file is known by its inode, size, modification time, change time (``ctime``:
the kernel sets it on every write or metadata change, and no user can set it back, so a
rewrite whose ``mtime`` was restored with ``touch -r`` is still seen) and a digest of
sampled blocks. A block device's node says nothing of its content, so a device is also
known by its device number, the kernel's disk sequence number (a new one each time a
disk is attached or its medium changes), the machine's boot and the sectors the kernel
has written to or discarded on it since boot (:mod:`.blockstate`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from typing import Any

from ..formats.sizes import KiB
from ..sources.raw import RawImage
from .blockstate import BlockState, block_state

#: Blocks sampled for the digest: the first and last 64 KiB and this many 4 KiB blocks
#: spread evenly in between. Cheap (holes cost nothing to read), and a source rewritten in
#: place with the same size and a restored mtime is still likely to be caught.
_SAMPLES = 64
_SAMPLE_BLOCK = 4 * KiB
_EDGE = 64 * KiB


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

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
        )

    def differences(self, other: SourceIdentity) -> list[str]:
        """What differs between ``self`` (recorded) and ``other`` (now), in words."""
        found = []
        if self.path != other.path:
            found.append(f"is at another path ({other.path}, was {self.path})")
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
        if self.sample_digest != other.sample_digest:
            found.append("has other content (sampled blocks differ)")
        return found


def _block_differences(recorded: BlockState | None, now: BlockState | None) -> list[str]:
    if recorded is None or now is None:
        return ["is another kind of file (a block device then or now, not both)"]
    return recorded.differences(now)


def source_identity(image: RawImage) -> SourceIdentity:
    """The identity of an open image (blocking: call it in a worker thread)."""
    info = os.fstat(image.fileno())
    # Read before sampling: a write that lands while the blocks are read moves it after.
    block = block_state(info.st_rdev) if image.is_block_device else None
    digest = hashlib.sha256(image.size.to_bytes(8, "little"))
    size = image.size
    offsets = [0, max(0, size - _EDGE)]
    step = max(1, size // (_SAMPLES + 1))
    offsets.extend(step * (i + 1) // _SAMPLE_BLOCK * _SAMPLE_BLOCK for i in range(_SAMPLES))
    for offset in offsets:
        length = _EDGE if offset in (0, max(0, size - _EDGE)) else _SAMPLE_BLOCK
        digest.update(image.read_at(offset, min(length, size - offset)))
    return SourceIdentity(
        path=os.path.realpath(image.path),
        size=size,
        mtime_ns=info.st_mtime_ns,
        inode=info.st_ino,
        device=info.st_dev,
        sample_digest=digest.hexdigest(),
        ctime_ns=info.st_ctime_ns,
        block=block,
    )
