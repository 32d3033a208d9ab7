"""When a fault rule fires: shared by the storage gateway and the Resource Manager
simulator, so that ``nth``, ``rate``/``seed`` and ``times`` mean the same in both."""

from __future__ import annotations

import random
from typing import Generic, Protocol, TypeVar


class FiringRule(Protocol):
    """The firing conditions of a fault rule."""

    @property
    def nth(self) -> int | None: ...

    @property
    def rate(self) -> float | None: ...

    @property
    def seed(self) -> int | None: ...

    @property
    def limit(self) -> int | None: ...


R = TypeVar("R", bound=FiringRule)


def check_rule(
    *,
    action: str,
    actions: tuple[str, ...],
    status: int,
    retry_after: float | None,
    delay: float,
    nth: int | None,
    rate: float | None,
    times: int | None,
) -> None:
    """The checks every fault rule shares; ValueError naming the bad field."""
    if action not in actions:
        raise ValueError(f"unknown fault action {action!r}; one of {', '.join(actions)}")
    if not 100 <= status <= 599:
        raise ValueError(f"status {status} is not an HTTP status")
    if retry_after is not None and retry_after < 0:
        raise ValueError("retry_after must not be negative")
    if delay < 0:
        raise ValueError("delay must not be negative")
    if action == "delay" and delay <= 0:
        raise ValueError("a delay rule needs delay > 0")
    if nth is not None and nth < 1:
        raise ValueError("nth counts from 1")
    if rate is not None and not 0.0 <= rate <= 1.0:
        raise ValueError("rate is a probability, 0 to 1")
    if times is not None and times < 0:
        raise ValueError("times must not be negative")


class RuleState(Generic[R]):
    """A rule with its counters (matched requests, times fired) and random stream."""

    __slots__ = ("fired", "matched", "rng", "rule")

    def __init__(self, rule: R) -> None:
        self.rule = rule
        self.matched = 0
        self.fired = 0
        self.rng = random.Random(rule.seed if rule.seed is not None else 0)

    def decide(self) -> bool:
        """Count one matching request; whether the rule fires for it."""
        rule = self.rule
        self.matched += 1
        hit = True
        if rule.nth is not None and self.matched < rule.nth:
            hit = False
        # Draw for every matching request so the pattern depends only on the seed.
        if rule.rate is not None and self.rng.random() >= rule.rate:
            hit = False
        limit = rule.limit
        return hit and (limit is None or self.fired < limit)
