"""Scripted run-command results: what a run command "prints" and whether it fails.

:class:`RunCommandRule` matches an invocation (script, VM, command id) and gives its
:class:`RunCommandOutcome`; :class:`RunCommandRules` is the simulator's ordered set of them.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["RunCommandInvocation", "RunCommandOutcome", "RunCommandRule", "RunCommandRules"]


@dataclass(frozen=True)
class RunCommandInvocation:
    """What a run command was asked to do, as a :class:`RunCommandRule` handler sees it."""

    vm_id: str
    vm_name: str
    os_type: str
    command_id: str
    script: tuple[str, ...]
    parameters: tuple[tuple[str, str], ...]
    os_disk_id: str | None
    data_disk_ids: tuple[str, ...]


@dataclass(frozen=True)
class RunCommandOutcome:
    """What a run command "did": its output and exit code, or an operation failure.

    A Linux script (RunShellScript) with a non-zero ``exit_code`` makes the operation fail
    with VMExtensionProvisioningError, as Azure does; PowerShell scripts report their
    streams and succeed.  ``error_code`` makes the operation fail with that code whatever
    the OS.  ``prepares`` says whether a successful run marks the VM's data disks prepared.
    """

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    error_code: str | None = None
    error_message: str | None = None
    prepares: bool = True


@dataclass(frozen=True)
class RunCommandRule:
    """Script the result of matching run commands (first matching rule wins).

    Matches on ``script`` (a regular expression searched in the script's lines joined by
    newlines), ``vm`` (a glob on the VM name) and ``command_id``.  The result is
    ``handler(invocation)`` when a handler is given, else ``outcome``.  ``duration``
    (simulated seconds, scaled by the time factor) overrides how long the command runs.
    ``times`` limits how often the rule applies.
    """

    script: str | None = None
    vm: str | None = None
    command_id: str | None = None
    outcome: RunCommandOutcome = field(default_factory=RunCommandOutcome)
    handler: Callable[[RunCommandInvocation], RunCommandOutcome] | None = None
    duration: float | None = None
    times: int | None = None

    def __post_init__(self) -> None:
        if self.script is not None:
            try:
                re.compile(self.script)
            except re.error as exc:
                raise ValueError(f"script is not a regular expression: {exc}") from None
        if self.duration is not None and self.duration < 0:
            raise ValueError("duration must not be negative")
        if self.times is not None and self.times < 0:
            raise ValueError("times must not be negative")

    def matches(self, invocation: RunCommandInvocation) -> bool:
        """Whether this rule is about ``invocation``."""
        if self.command_id is not None and self.command_id.lower() != (
            invocation.command_id.lower()
        ):
            return False
        if self.vm is not None and not fnmatch.fnmatchcase(
            invocation.vm_name.lower(), self.vm.lower()
        ):
            return False
        return (
            self.script is None or re.search(self.script, "\n".join(invocation.script)) is not None
        )

    def result(self, invocation: RunCommandInvocation) -> RunCommandOutcome:
        """The outcome for ``invocation``."""
        return self.handler(invocation) if self.handler is not None else self.outcome


class RunCommandRules:
    """The simulator's run command rules, in order, each with how often it applied."""

    def __init__(self, rules: Iterable[RunCommandRule] = ()) -> None:
        self._rules: list[tuple[RunCommandRule, list[int]]] = []
        self.replace(rules)

    def replace(self, rules: Iterable[RunCommandRule]) -> None:
        """Replace all rules (their counters start from zero)."""
        self._rules = [(rule, [0]) for rule in rules]

    def add_first(self, rule: RunCommandRule) -> None:
        """Add a rule before the others (so it wins)."""
        self._rules.insert(0, (rule, [0]))

    def pick(self, matches: Callable[[RunCommandRule], bool]) -> RunCommandRule | None:
        """The first rule that matches and may still apply (counting its use)."""
        for rule, used in self._rules:
            if rule.times is not None and used[0] >= rule.times:
                continue
            if matches(rule):
                used[0] += 1
                return rule
        return None
