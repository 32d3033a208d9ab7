"""Where a source is: a file path or an NBD URL (``nbd://HOST[:PORT]/EXPORT``,
``nbd+unix:///EXPORT?socket=PATH``), told apart, joined to a base folder and checked
against the formats, so that callers treat a URL as a name and never as a file."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ..errors import InputError
from .base import FORMATS

#: The URL schemes of NBD exports (qemu's: ``nbd``, ``nbd+tcp``, ``nbd+unix``; and the
#: TLS ones, ``nbds...``).
_URL = re.compile(r"^nbds?(\+[a-z]+)?://", re.IGNORECASE)


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is an NBD URL rather than a file path (pure: looks at the
    text only)."""
    return isinstance(location, str) and _URL.match(location) is not None


def location_text(location: str | os.PathLike[str]) -> str:
    """``location`` as a string, as the user gave it (a URL is never made a path)."""
    return location if isinstance(location, str) else os.fspath(location)


def join_location(base: str | os.PathLike[str] | None, location: str) -> str:
    """``location`` taken relative to ``base`` (a manifest's or a plan's folder) and
    normalised; a URL or an absolute path is left as it is (a path still normalised)."""
    if is_url(location):
        return location
    path = Path(location)
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return os.path.normpath(path)


def check_format(image_format: str | None, *, what: str = "--format") -> str | None:
    """``image_format`` when it is one of :data:`~azrestore.sources.base.FORMATS` (or
    None); else :class:`InputError`, one line naming them."""
    if image_format is None or image_format in FORMATS:
        return image_format
    raise InputError(
        f"{what}: {image_format!r} is not an image format (one of: {', '.join(FORMATS)})"
    )


def file_key(location: str | os.PathLike[str]) -> tuple[int, ...] | None:
    """What makes two spellings of one file the same (blocking): a block device's device
    number, else the file's device and inode; None for a URL or a file that is gone."""
    if is_url(location):
        return None
    try:
        info = os.stat(location)
    except OSError:
        return None
    return (info.st_rdev,) if stat.S_ISBLK(info.st_mode) else (info.st_dev, info.st_ino)


def location_stamp(location: str | os.PathLike[str]) -> list[object]:
    """A short description of the source's identity, for a tag (blocking): a file's path,
    size, modification time and inode; a URL as it is. Raises OSError for a missing file."""
    text = location_text(location)
    if is_url(text):
        return [text]
    info = os.stat(text)
    return [text, info.st_size, info.st_mtime_ns, info.st_ino]
