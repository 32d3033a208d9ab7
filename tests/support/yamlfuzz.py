"""Hypothesis strategies for the YAML (and JSON) files azrestore reads: a valid file
mutated byte by byte, a valid document with parts replaced by random values (shared ones,
which YAML writes as anchors and aliases, included), and hostile shapes."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from hypothesis import strategies as st

#: A billion laughs: nine levels of ten aliases each (10**9 values once expanded).
LAUGHS = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
)

_TOKENS = [
    "&a ",
    "*a",
    "<<: ",
    "!!int ",
    "!!timestamp ",
    "!!binary ",
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "\n",
    "\t",
    "'",
    '"',
    "#",
    "%YAML 1.1\n",
    "---\n",
    "\x00",
    "\ufeff",
    "9" * 30,
    "1e999",
    ".nan",
    "~",
    "? ",
]


def nested_flow(depth: int, inner: str = "") -> str:
    """``[[[...]]]``: ``depth`` levels of flow sequences around ``inner``."""
    return "[" * depth + inner + "]" * depth


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few characters or YAML tokens inserted, deleted or replaced."""
    out = list(text)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(out)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "token"]))
        piece = draw(st.characters()) if action != "token" else draw(st.sampled_from(_TOKENS))
        if action == "delete":
            del out[at : at + draw(st.integers(1, 20))]
        elif action == "replace" and at < len(out):
            out[at] = piece
        else:
            out.insert(at, piece)
    return "".join(out)


def values(keys: list[str]) -> st.SearchStrategy[Any]:
    """Random YAML values; mappings keyed mostly by ``keys``; shared parts (aliases)."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=20),
        st.sampled_from(keys),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.sampled_from(keys) | st.text(max_size=5), children, max_size=4),
            children.map(lambda shared: [shared, shared]),  # written as &id001 / *id001
        ),
        max_leaves=20,
    )


def _keys(data: Any) -> set[str]:
    if isinstance(data, dict):
        return set(data) | {k for value in data.values() for k in _keys(value)}
    if isinstance(data, list):
        return {k for item in data for k in _keys(item)}
    return set()


@st.composite
def documents(draw: st.DrawFn, template: Any) -> Any:
    """``template`` (a valid document) with some of its parts replaced by random values."""
    keys = sorted(_keys(template)) or ["x"]
    data = copy.deepcopy(template)

    def walk(node: Any) -> Any:
        if draw(st.integers(0, 9)) == 0:
            return draw(values(keys))
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(data)


def yaml_documents(template: Any) -> st.SearchStrategy[str]:
    """:func:`documents` written as YAML (block or flow) or JSON."""
    return documents(template).flatmap(
        lambda data: st.sampled_from(
            [
                yaml.safe_dump(data, sort_keys=False),
                yaml.safe_dump(data, default_flow_style=True),
                json.dumps(data),
            ]
        )
    )
