"""Exports that load on first use, for the packages' ``__init__`` modules: importing a
package (or one light module in it) need not pay for everything it re-exports."""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def lazy_exports(
    package: str, namespace: dict[str, Any], homes: dict[str, str]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``homes`` maps each exported name to the
    module that defines it (absolute, or relative to ``package``); a loaded name is kept
    in ``namespace`` (the package's ``globals()``), so it loads once."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, package), name)
        namespace[name] = value
        return value

    return __getattr__
