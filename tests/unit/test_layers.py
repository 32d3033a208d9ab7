"""The layering holds: every import inside azrestore points down, and none forms a cycle.

formats < sources < transfer < azure < restore < jobs < cli; the emulator stands beside,
importing nothing of the code it judges. Read from the source with ``ast``, imports inside
functions and under ``TYPE_CHECKING`` included, so that a lazy import cannot slip through.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "azrestore"

#: Modules every layer may use: the exception hierarchy, redaction, the lazy-export helper,
#: bounded YAML files. They import nothing of azrestore but the exception hierarchy.
BASE = {"errors", "redact", "_lazy", "yamlfile"}

#: Each layer and the layers it may import (besides itself and BASE).
ALLOWED: dict[str, set[str]] = {
    "formats": set(),
    "sources": {"formats"},
    "transfer": {"sources", "formats"},
    "azure": {"transfer", "sources", "formats"},
    "restore": {"azure", "transfer", "sources", "formats"},
    "jobs": {"restore", "azure", "transfer", "sources", "formats", "emulator"},
    "cli": {"jobs", "restore", "azure", "transfer", "sources", "formats", "emulator"},
    "emulator": set(),
}

#: Modules of formats/ are pure: no I/O and no asyncio. Of ``os`` they may use only
#: ``urandom`` (a VHD's unique id), and they never call ``open``.
IMPURE = {"asyncio", "anyio", "aiohttp", "io", "mmap", "pathlib", "socket", "subprocess"}
PURE_OS = {"urandom"}


def modules() -> Iterator[tuple[str, Path]]:
    """Every module of azrestore but its top-level ``__init__`` (lazy exports only)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(relative.parts).removesuffix(".__init__")
        if name != "azrestore":
            yield name, path


def imported(name: str, path: Path) -> Iterator[str]:
    """The absolute names of every module ``path`` imports, at any depth of its code."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                assert node.module is not None
                yield node.module
                continue
            parts = name.split(".")
            base = parts[: len(parts) - node.level + (1 if is_package else 0)]
            yield ".".join([*base, node.module] if node.module else base)


def layer(module: str) -> str:
    """The layer of an azrestore module: its first component below the package."""
    return module.split(".")[1]


MODULES = dict(modules())


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down(name: str) -> None:
    own = layer(name)
    if own in BASE:
        allowed = {"errors"} - {own}
    else:
        assert own in ALLOWED, f"{name}: a layer this test does not know; add it to ALLOWED"
        allowed = ALLOWED[own] | BASE | {own}
    upward = sorted(
        target
        for target in set(imported(name, MODULES[name]))
        if target.startswith("azrestore.") and layer(target) not in allowed
    )
    assert not upward, f"{name} imports above or beside its layer: {upward}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n) == "formats"))
def test_formats_are_pure(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text())
    impure = sorted(
        target for target in set(imported(name, MODULES[name])) if target.split(".")[0] in IMPURE
    )
    os_uses = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    }
    opens = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open"
    ]
    assert not impure, f"{name} is in formats/ but imports {impure}"
    assert os_uses <= PURE_OS, f"{name} is in formats/ but uses os.{sorted(os_uses - PURE_OS)}"
    assert not opens, f"{name} is in formats/ but opens files (lines {opens})"


def test_no_import_cycles() -> None:
    graph = {
        name: {target for target in imported(name, path) if target in MODULES and target != name}
        for name, path in MODULES.items()
    }
    # A cycle through a package's __init__ is how a package re-exports its own modules:
    # only edges between leaf modules count.
    packages = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node] - packages):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in sorted(set(graph) - packages):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_test_sees_imports() -> None:
    """A layering test that parsed nothing would pass on anything: check it finds real ones."""
    assert "azrestore.formats.sizes" in set(
        imported("azrestore.transfer.chunking", MODULES["azrestore.transfer.chunking"])
    )
    assert len(MODULES) > 40
