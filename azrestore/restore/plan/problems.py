"""How a plan's problems are worded: ``plan.yaml: vms[1].disks[0].lun: message (line N)``,
one line each, all of them together in one :class:`PlanError`."""

from __future__ import annotations

from collections.abc import Mapping

from ...errors import InputError

#: Where a problem is in the plan: ``("vms", 1, "disks", 0, "lun")``.
Loc = tuple[str | int, ...]


class PlanError(InputError):
    """A plan with problems: one line per problem in the message, and in ``problems``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


class CrossFieldProblems(ValueError):
    """Cross-field problems found after the fields themselves validated."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(f"{format_loc(loc)}: {msg}" for loc, msg in problems))
        self.problems = problems


def format_loc(loc: Loc) -> str:
    """``vms[1].disks[0].lun``; ``(plan)`` for the whole plan."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(plan)"


def line_of(loc: Loc, lines: Mapping[Loc, int]) -> int | None:
    """The line of ``loc``, else of the nearest enclosing key that has one."""
    return next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)


def problem_line(source: str, loc: Loc, message: str, lines: Mapping[Loc, int]) -> str:
    """One line of a :class:`PlanError`."""
    line = line_of(loc, lines)
    where = f" (line {line})" if line is not None else ""
    return f"{source}: {format_loc(loc)}: {message}{where}"
