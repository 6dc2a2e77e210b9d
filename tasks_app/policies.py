"""The policy hook of planning (DESIGN §5.2): opt-outs, quiet hours, dedup, frequency caps.

`decide(plan, deliveries, now)` returns, per delivery id, what to do instead of sending
now: `Skip(reason)` or `Defer(until)`. Deliveries absent from the result go out. Policies
run in the order of POLICIES; the first that decides wins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Defer:
    until: datetime


Decision = Skip | Defer


@dataclass
class PlanContext:
    """What policies may look at: the task, its version and category."""

    task: Any
    version: Any
    category: str


def decide(ctx: PlanContext, deliveries: list, now: datetime) -> dict[int, Decision]:
    decisions: dict[int, Decision] = {}
    for policy in POLICIES:
        undecided = [d for d in deliveries if d.pk not in decisions]
        if not undecided:
            break
        decisions.update(policy(ctx, undecided, now))
    return decisions


def after_send(ctx: PlanContext, deliveries: list, now: datetime) -> None:
    """Called for deliveries that were let through (counters of dedup and caps)."""


POLICIES: list = []
