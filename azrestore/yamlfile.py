"""Bounded safe YAML for the files azrestore reads: the restore plan and the bulk manifest
(JSON is read as the YAML it is).

A file larger than :data:`MAX_FILE_SIZE` is refused before it is read. While a document
is composed, its nesting, its aliases and the values it expands to (an alias counts as
everything it names) are counted as they arrive, so that an alias bomb, a self-referring
alias or thousands of levels of brackets are refused in a moment, with the line where
the limit was passed, instead of eating memory or ending in a RecursionError. Scalars
that a tag cannot read (``!!int abc``, an integer of 5,000 digits) are YAML errors too.

libyaml's parser is used when PyYAML has it (the pure Python one is many times slower);
the nodes are composed here, in Python, so that every limit is checked before a node is
kept.
"""

from __future__ import annotations

import os
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.resolver import Resolver

from .errors import InputError

#: The largest file azrestore reads as a plan or manifest, in bytes (1 MiB).
MAX_FILE_SIZE = 1 << 20
#: Levels of nesting a document may have, aliases expanded.
MAX_DEPTH = 64
#: Aliases (``*name``) a document may use.
MAX_ALIASES = 1000
#: Values (scalars, lists and mappings, keys included) a document may hold, each alias
#: counted as all the values it names.
MAX_VALUES = 100_000

_DEPTH_PROBLEM = f"too deeply nested: more than {MAX_DEPTH} levels"
_LIBYAML_DEPTH = "exceeded maximum nesting depth"

try:
    from yaml._yaml import CParser as _Parser
except ImportError:  # PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: bytes) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


class LimitError(yaml.MarkedYAMLError):
    """A document over one of the limits; ``problem`` says which."""

    def describe(self, source: object) -> str:
        """``SOURCE: problem (line N, column M)``: the one line reporting it."""
        mark = self.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return f"{source}: {self.problem}{where}"


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class BoundedLoader(Composer, _Parser, SafeConstructor, Resolver):
    """PyYAML's safe loader with the limits of this module checked while composing."""

    def __init__(self, text: str) -> None:
        # As UTF-8 bytes: a lone surrogate then fails as the parser reads it (a YAML error).
        _Parser.__init__(self, text.encode("utf-8", "surrogatepass"))
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        Composer.__init__(self)
        self._depth = 0
        self._aliases = 0
        self._values = 0
        #: id of each node composed -> (values it holds, its height), aliases expanded
        self._shapes: dict[int, tuple[int, int]] = {}

    def _limit(self, problem: str, mark: Any) -> LimitError:
        return LimitError(None, None, problem, mark)

    def _count(self, values: int, depth: int, mark: Any) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            expanded = " (aliases expanded)" if self._aliases else ""
            raise self._limit(f"too large: more than {MAX_VALUES} values{expanded}", mark)
        if depth > MAX_DEPTH:
            raise self._limit(_DEPTH_PROBLEM, mark)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        mark = event.start_mark if event is not None else None
        if isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise self._limit(f"too many aliases: more than {MAX_ALIASES}", mark)
            named = self.anchors.get(event.anchor)
            if named is not None:
                shape = self._shapes.get(id(named))
                if shape is None:
                    raise self._limit(f"alias *{event.anchor} is inside the value it names", mark)
                self._count(shape[0], self._depth + shape[1], mark)
            return super().compose_node(parent, index)  # an undefined alias is refused there
        self._depth += 1
        self._count(1, self._depth, mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if node is not None:
            shapes = [self._shapes[id(child)] for child in _children(node)]
            self._shapes[id(node)] = (
                1 + sum(values for values, _ in shapes),
                1 + max((height for _, height in shapes), default=0),
            )
        return node

    def get_single_node(self) -> Node | None:
        try:
            node: Node | None = super().get_single_node()
        except yaml.MarkedYAMLError as exc:
            if exc.problem != _LIBYAML_DEPTH:
                raise
            # libyaml reads ahead and may meet its own limit (1000 levels) before ours.
            raise self._limit(_DEPTH_PROBLEM, exc.problem_mark) from None
        return node

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            # SafeConstructor's scalar readers: int('abc'), bool_values['x'], a date of
            # month 13, an integer of more digits than Python converts...
            kind = str(node.tag).rsplit(":", 1)[-1]
            text = str(node.value)
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise ConstructorError(
                None, None, f"not a valid {kind}: {shown!r}", node.start_mark
            ) from None


def load(text: str) -> Any:
    """The one document of ``text`` as Python values (None when empty). Raises
    :class:`LimitError` over a limit, another ``yaml.YAMLError`` when not valid YAML."""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_limited(path: str | os.PathLike[str], *, what: str = "file") -> bytes:
    """The bytes of the file at ``path``. One larger than :data:`MAX_FILE_SIZE` is refused
    with an :class:`InputError` naming it (``what`` says what it is, ``a plan``), before it
    is read when it is a regular file; a pipe or device is read no further than one byte
    past the limit. ``OSError`` as opening or reading raise it."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size <= MAX_FILE_SIZE:
            data = handle.read(MAX_FILE_SIZE + 1)
            if len(data) <= MAX_FILE_SIZE:
                return data
    raise InputError(f"{path}: larger than {MAX_FILE_SIZE >> 20} MiB, the limit for {what}")
