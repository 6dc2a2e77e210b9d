"""The policy hook of planning (DESIGN §5.2): opt-outs, quiet hours, dedup, frequency caps.

`decide(ctx, deliveries, now)` returns, per delivery id, what to do instead of sending
now: `Skip(reason)` or `Defer(until)`. Deliveries absent from the result go out. Policies
run in the order of POLICIES; the first that decides wins. Each policy looks at a whole
batch with a constant number of queries (or Redis round trips)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from channels_app.models import SkipReason

from . import limits, quiet_hours


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Defer:
    until: datetime


Decision = Skip | Defer


@dataclass
class PlanContext:
    """What policies may look at: the task, its version and category, and `render(d)`
    (the delivery's rendered content snapshot, computed once)."""

    task: Any
    version: Any
    category: str
    render: Callable[[Any], dict] | None = None
    _windows: list | None = field(default=None, repr=False)

    @property
    def settings(self) -> dict[str, Any]:
        return getattr(self.version, "settings", None) or {}

    @property
    def template_code(self) -> str:
        return self.task.template.code

    def windows(self) -> list[quiet_hours.Window]:
        if self._windows is None:
            self._windows = quiet_hours.active_windows()
        return self._windows

    def content(self, d: Any) -> dict:
        if not getattr(d, "_rendered", False):
            d.content = self.render(d) if self.render else (d.content or {})
            d._rendered = True
        return d.content


def decide(ctx: PlanContext, deliveries: list, now: datetime) -> dict[int, Decision]:
    decisions: dict[int, Decision] = {}
    # A console "send a test to me" (kind `test`) reaches the staff user at once, whatever
    # the hour and however often they try.
    deliveries = [d for d in deliveries if getattr(d, "kind", "") != "test"]
    for policy in POLICIES:
        undecided = [d for d in deliveries if d.pk not in decisions]
        if not undecided:
            break
        decisions.update(policy(ctx, undecided, now))
    return decisions


# --- the policies, in DESIGN order -------------------------------------------------------


def opt_outs(ctx: PlanContext, deliveries: list, now: datetime) -> dict[int, Decision]:
    """Preferences: an opt-out of the category (or of all), on the channel (or all).
    Verification messages ignore opt-outs; group posts have no one to opt out."""
    from .models import Preference

    if ctx.category == "verification":
        return {}
    people = [d for d in deliveries if d.recipient_id]
    if not people:
        return {}
    rows = Preference.objects.filter(
        recipient_id__in={d.recipient_id for d in people},
        opted_out=True,
        category__in=["", ctx.category],
        channel__in=["", *{d.channel for d in people}],
    ).values_list("recipient_id", "channel")
    out: set[tuple[int, str]] = set()
    for recipient_id, channel in rows:
        out.add((recipient_id, channel))
    skip = Skip(SkipReason.OPTED_OUT)
    return {
        d.pk: skip
        for d in people
        if (d.recipient_id, "") in out or (d.recipient_id, d.channel) in out
    }


def quiet(ctx: PlanContext, deliveries: list, now: datetime) -> dict[int, Decision]:
    """Quiet hours in each recipient's timezone: defer to the window's end, or drop."""
    windows = ctx.windows()
    if not windows:
        return {}
    decisions: dict[int, Decision] = {}
    for d in deliveries:
        tz = d.recipient.timezone if d.recipient_id else ""
        outcome = quiet_hours.combine(
            windows, recipient_tz=tz, category=ctx.category, channel=d.channel, now=now
        )
        if outcome is None:
            continue
        decisions[d.pk] = (
            Skip(SkipReason.QUIET_HOURS_DROPPED)
            if outcome.action == "drop"
            else Defer(outcome.until)
        )
    return decisions


def dedup(ctx: PlanContext, deliveries: list, now: datetime) -> dict[int, Decision]:
    window = limits.dedup_window(ctx.settings)
    # A delivery that failed to render goes on to fail visibly, not to be deduplicated.
    rendered = [d for d in deliveries if not ctx.content(d).get("render_error")]
    dupes = limits.find_duplicates(
        rendered, template=ctx.template_code, window=window, now=now, content_of=ctx.content
    )
    skip = Skip(SkipReason.DEDUPLICATED)
    return dict.fromkeys(dupes, skip)


def frequency_cap(ctx: PlanContext, deliveries: list, now: datetime) -> dict[int, Decision]:
    cap, scope = limits.daily_cap(ctx.settings, ctx.category)
    capped = limits.find_capped(
        deliveries, template=ctx.template_code, category=ctx.category, cap=cap, scope=scope, now=now
    )
    skip = Skip(SkipReason.FREQUENCY_CAPPED)
    return dict.fromkeys(capped, skip)


POLICIES: list = [opt_outs, quiet, dedup, frequency_cap]
