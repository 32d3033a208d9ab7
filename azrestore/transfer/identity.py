"""What a source image is, so that a journal is only resumed onto the very same data."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from typing import Any

from ..formats.sizes import KiB
from ..sources.raw import RawImage

#: Blocks sampled for the digest: the first and last 64 KiB and this many 4 KiB blocks
#: spread evenly in between. Cheap (holes cost nothing to read), and a source rewritten in
#: place with the same size and a restored mtime is still likely to be caught.
_SAMPLES = 64
_SAMPLE_BLOCK = 4 * KiB
_EDGE = 64 * KiB


@dataclass(frozen=True, slots=True)
class SourceIdentity:
    """A source image's path, size, modification time, inode and a digest of sampled blocks."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int
    sample_digest: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourceIdentity:
        return cls(
            path=str(data["path"]),
            size=int(data["size"]),
            mtime_ns=int(data["mtime_ns"]),
            inode=int(data["inode"]),
            device=int(data["device"]),
            sample_digest=str(data["sample_digest"]),
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
        if self.sample_digest != other.sample_digest:
            found.append("has other content (sampled blocks differ)")
        return found


def source_identity(image: RawImage) -> SourceIdentity:
    """The identity of an open image (blocking: call it in a worker thread)."""
    info = os.fstat(image.fileno())
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
    )
