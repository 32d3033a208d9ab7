"""Open any disk source by what the user named: a file path (raw, or a container format
found from its signature) or an NBD URL; ``image_format`` forces one of
:data:`~azrestore.sources.base.FORMATS`.

Raw files and block devices are read directly (:mod:`.raw`), and so are fixed VHDs
(:mod:`.fixedvhd`) and differencing VHDs and VHDXs over their parents
(:mod:`.differencing`); other container images through a qemu-nbd child each
(:mod:`.qemu`); NBD URLs by the NBD client (:mod:`.nbd`).
"""

from __future__ import annotations

import os
import stat

from ..errors import InputError, unreadable_file
from ..formats.containers import QEMU_FORMATS, detect_container
from ..formats.nbd_url import is_nbd_url
from ..formats.sizes import SECTOR, KiB
from .base import FORMATS, DiskSource
from .raw import RawImage

_HEAD = 64 * KiB


async def open_source(
    location: str | os.PathLike[str], *, image_format: str | None = None
) -> DiskSource:
    """Open and check the source at ``location`` off the event loop. Raises
    :class:`~azrestore.errors.InputError` (one line naming it) for a source that cannot
    be used, before anything is created in Azure."""
    import anyio.to_thread  # here, so that the blocking convert starts without anyio

    if image_format is not None and image_format not in FORMATS:
        raise InputError(f"unknown image format {image_format!r} (one of: {', '.join(FORMATS)})")
    opened: list[DiskSource] = []

    def work() -> DiskSource:
        source = open_source_blocking(location, image_format=image_format)
        opened.append(source)
        return source

    try:
        return await anyio.to_thread.run_sync(work)
    except BaseException:
        # Should the opened source be lost to an exception on its way back (anyio returns
        # it even when cancelled meanwhile), it is closed: no qemu-nbd outlives it.
        for source in opened:
            source.close()
        raise


def open_source_blocking(
    location: str | os.PathLike[str], *, image_format: str | None = None
) -> DiskSource:
    """:func:`open_source` in the calling thread (for callers that run without anyio)."""
    if image_format is not None and image_format not in FORMATS:
        raise InputError(f"unknown image format {image_format!r} (one of: {', '.join(FORMATS)})")
    text = os.fspath(location)
    if isinstance(location, str) and is_nbd_url(text):
        if image_format not in (None, "nbd"):
            raise InputError(
                f"{text}: an NBD export is read as the server exports it;"
                f" --format {image_format} does not apply"
            )
        from .nbd import open_nbd

        return open_nbd(text)
    if image_format == "nbd":
        raise InputError(f"{text}: format nbd needs an nbd:// or nbd+unix:// URL")
    if image_format == "raw":
        return RawImage.open(text)
    name = _sniff(text)
    if name in ("VHD (differencing)", "VHDX") and image_format in (None, _DIFFERENCING[name]):
        from .diffmaps import differencing_kind

        kind = "vpc" if name == "VHD (differencing)" else differencing_kind(text)
        if kind is not None:  # qemu reads neither: read here, over its parent
            from .differencing import open_differencing

            return open_differencing(text, kind, _open_parent)
    if name == _FIXED_VHD and image_format in (None, "vpc"):
        from .fixedvhd import FixedVhdImage

        return FixedVhdImage.open(text)
    fmt = image_format if image_format is not None else _qemu_format(text, name)
    if fmt is None:
        return RawImage.open(text)
    from .qemu import open_container

    return open_container(text, fmt)


def _open_parent(path: str, fmt: str) -> DiskSource:
    return open_source_blocking(path, image_format=fmt)


#: The formats whose differencing files are read by :mod:`.differencing`.
_DIFFERENCING = {"VHD (differencing)": "vpc", "VHDX": "vhdx"}
#: What :func:`_sniff` calls a fixed VHD with a whole 512-byte footer: read directly.
_FIXED_VHD = "VHD (fixed)"


def _sniff(path: str) -> str | None:
    """The container format the signature of ``path`` shows (``detect_container``'s
    name), or None for a raw disk (and for what :meth:`RawImage.open` refuses with its own
    words: missing, a directory...)."""
    try:
        mode = os.stat(path).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
            return None
        with open(path, "rb", buffering=0) as handle:
            head = handle.read(_HEAD)
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - SECTOR))
            tail = handle.read(SECTOR)
    except FileNotFoundError:
        return None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise unreadable_file(path, exc, action="open") from None
    name = detect_container(head, tail)
    if name == _FIXED_VHD and not tail.startswith(b"conectix"):
        return "VHD (fixed, 511-byte footer)"  # Virtual PC's old footer: through qemu
    return name


def _qemu_format(path: str, name: str | None) -> str | None:
    """qemu's name of the container format ``name``, None for raw; refuses the formats
    azrestore does not read."""
    if name is None:
        return None
    fmt = QEMU_FORMATS.get(name.replace(", 511-byte footer", ""))
    if fmt is None:
        raise InputError(
            f"{path}: is a {name} image, which azrestore does not read"
            " (convert it first, e.g. qemu-img convert -O raw)"
        )
    return fmt
