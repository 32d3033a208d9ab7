"""Reading a plan: safe YAML without duplicate keys, each field's line, and pydantic's
errors reworded as the plan's problems (``required``, ``unknown key (expected one of:
...)``), sorted top to bottom. The file and its YAML are bounded (size, nesting, aliases,
values: :mod:`azrestore.yamlfile`).

Relative image paths are taken against the plan file's directory and normalised
lexically (``a/../b`` is ``b``); symlinks are not resolved at load time. Unknown keys are
errors (a typo is not silently ignored), and so are duplicate keys in the YAML.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ...errors import InputError
from ...yamlfile import BoundedLoader, LimitError, read_limited
from .document import RestorePlan
from .problems import CrossFieldProblems, Loc, PlanError, line_of, problem_line


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class whose field ``loc`` names (to list the allowed keys)."""
    model: type[BaseModel] | None = RestorePlan
    for part in loc[:-1]:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        model = _inner_model(info.annotation) if info else None
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None or get_args(annotation):
        for arg in get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


#: The tags of a helpers field's forms (see :data:`.helpers.HelperField`), not plan keys.
_HELPER_FORMS = ("id", "list", "created")


def _untagged(loc: Loc) -> Loc:
    """``helpers.linux.created.size`` is ``helpers.linux.size`` in the plan."""
    if len(loc) > 2 and loc[0] == "helpers" and loc[2] in _HELPER_FORMS:
        return (*loc[:2], *loc[3:])
    return loc


def _pydantic_problems(error: ValidationError) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for item in error.errors():
        loc: Loc = _untagged(tuple(item["loc"]))
        kind = item["type"]
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, CrossFieldProblems):
            problems.extend(cause.problems)
            continue
        if kind == "missing":
            message = "required"
        elif kind == "extra_forbidden":
            model = _model_at(loc)
            allowed = ", ".join(model.model_fields) if model else ""
            message = "unknown key" + (f" (expected one of: {allowed})" if allowed else "")
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            message = message.replace("Input should", "should", 1)
            value = item.get("input")
            if kind != "value_error" and isinstance(value, str | int | float | bool | None):
                shown = repr(value)
                message += f" (got {shown if len(shown) <= 80 else shown[:77] + '...'})"
        # A value of a megabyte quoted back is not one clear line.
        problems.append((loc, message if len(message) <= 200 else message[:197] + "..."))
    return problems


class _Loader(BoundedLoader):
    """Bounded safe YAML that refuses duplicate keys (PyYAML would keep the last silently)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node.start_mark.line)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            ) from None
        if first != key_node.start_mark.line:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {first + 1})",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


# (The stubs bound add_constructor to PyYAML's own loader classes.)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)  # type: ignore[type-var]


def _line_map(
    node: yaml.Node | None, loc: Loc = (), lines: dict[Loc, int] | None = None
) -> dict[Loc, int]:
    """Each path in the document -> the line (1-based) of its key or item."""
    lines = {} if lines is None else lines
    if node is None:
        return lines
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                child = (*loc, str(key_node.value))
                lines[child] = key_node.start_mark.line + 1
                _line_map(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*loc, index), lines)
    return lines


def parse_plan(text: str, *, source: str = "plan", base_dir: str | os.PathLike[str]) -> RestorePlan:
    """Validate a plan given as YAML text; relative image paths are taken against
    ``base_dir``. Raises :class:`PlanError` listing every problem."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except LimitError as exc:
        raise PlanError([exc.describe(source)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        raise PlanError([f"{source}: not valid YAML: {what}{where}"]) from None
    except yaml.YAMLError as exc:
        raise PlanError([f"{source}: not valid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise PlanError([f"{source}: a plan is a mapping with target and vms, not {found}"])
    lines = _line_map(node)
    try:
        plan = RestorePlan.model_validate(data, context={"base_dir": Path(base_dir)})
    except ValidationError as exc:
        # In the file's order, top to bottom.
        problems = sorted(_pydantic_problems(exc), key=lambda p: line_of(p[0], lines) or 0)
        raise PlanError([problem_line(source, loc, msg, lines) for loc, msg in problems]) from None
    plan.locate(source, lines)
    return plan


def load_plan(path: str | os.PathLike[str]) -> RestorePlan:
    """Read and validate a plan file. Sync and pure apart from reading the file (no image
    is opened: see :func:`resolve_plan`); run it in a worker thread from async code.
    Raises :class:`PlanError` (an InputError, exit code 2) listing every problem."""
    plan_path = Path(path)
    source = str(path)
    try:
        text = read_limited(plan_path, what="a plan").decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{source}: is a directory, not a plan") from None
    except PermissionError:
        raise InputError(f"{source}: permission denied") from None
    except UnicodeDecodeError:
        raise InputError(f"{source}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror or exc}") from None
    return parse_plan(text, source=source, base_dir=plan_path.absolute().parent)
