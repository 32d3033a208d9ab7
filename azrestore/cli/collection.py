"""The cyclic garbage collector paused while the command line's modules load, then
resumed with those modules' objects frozen out of later collections."""

from __future__ import annotations

import gc


def pause_collection() -> None:
    """Stop the cyclic garbage collector while the command line's modules load: an upload
    imports some 500 modules (aiohttp, anyio, uvloop...), and the collections their
    objects set off, each walking every object made so far, were about a tenth of the
    CPU an upload of an empty disk took before it sent anything."""
    gc.disable()


def resume_collection() -> None:
    """Collect again, leaving the objects made so far (modules, classes, functions: they
    live as long as the process) out of every later collection (``gc.freeze``)."""
    gc.freeze()
    gc.enable()
