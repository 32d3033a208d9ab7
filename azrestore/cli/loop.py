"""Running the command line's one coroutine to completion on uvloop, with the loop's
exception handler told to drop one known noise of a cancelled run."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion on uvloop."""
    result: T = uvloop.run(_quiet_teardown(coroutine))
    return result


async def _quiet_teardown(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` with the loop's exception handler told to drop one known noise:
    uvloop's TLS protocol writing to a transport that a cancelled run (Ctrl-C) has
    already closed. Everything else still goes to the default handler."""
    import asyncio

    loop = asyncio.get_running_loop()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, RuntimeError) and "handler is closed" in str(error):
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    return await coroutine
