"""Quiet hours (夜间屏蔽, DESIGN §6) as pure functions of (policy, zone, category,
channel, now): no database, no clock of their own, so tests pass any `now`.

A window `start`-`end` is wall-clock time in the recipient's zone (else the policy's,
else settings.TIME_ZONE) and may cross midnight (22:00-08:00). Inside it a delivery is
deferred to the window's end (the first instant the local clock shows `end`, DST-safe)
or dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

# Categories that pass quiet hours unless a policy names them explicitly.
BYPASS_CATEGORIES = ("verification", "alert")


@dataclass(frozen=True)
class Window:
    """A quiet-hours policy as evaluated (a QuietHours row, or the settings default)."""

    start: time
    end: time
    timezone: str = ""
    categories: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    action: str = "defer"
    name: str = ""
    id: int | None = field(default=None, compare=False)

    @classmethod
    def from_model(cls, policy) -> Window:
        return cls(
            start=policy.start,
            end=policy.end,
            timezone=policy.timezone or "",
            categories=tuple(policy.categories or ()),
            channels=tuple(policy.channels or ()),
            action=policy.action,
            name=policy.name,
            id=policy.pk,
        )

    def applies_to(self, category: str, channel: str) -> bool:
        if self.categories:
            if category not in self.categories:
                return False
        elif category in BYPASS_CATEGORIES:
            return False
        return not self.channels or channel in self.channels


@dataclass(frozen=True)
class Outcome:
    """What a window says about a delivery now: `drop`, or `defer` until `until`."""

    action: str
    until: datetime | None
    window: Window


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_for(recipient_tz: str, policy_tz: str = "") -> ZoneInfo:
    """The zone a window is read in: the recipient's, else the policy's, else TIME_ZONE."""
    return zone(recipient_tz) or zone(policy_tz) or zone(settings.TIME_ZONE) or ZoneInfo("UTC")


def in_window(clock: time, start: time, end: time) -> bool:
    """Is the wall-clock time inside [start, end)? Windows with start > end cross midnight."""
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end


def first_instant(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the local clock of `tz` on `day` shows `clock`.

    Repeated hours (autumn) take the first occurrence; a time skipped by a spring-forward
    gap maps to the end of the gap, when the clock jumps past it."""
    naive = datetime.combine(day, clock)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first
    # In a gap: between the two readings the local clock jumps over `clock`.
    lo = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = first
    if lo > hi:
        lo, hi = hi, lo
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def window_end(window: Window, tz: ZoneInfo, now: datetime) -> datetime:
    """When the window containing `now` ends (UTC)."""
    local = now.astimezone(tz)
    day = local.date()
    if window.start > window.end and local.time() >= window.start:
        day += timedelta(days=1)  # evening part of a window that crosses midnight
    return first_instant(day, window.end, tz)


def evaluate(
    window: Window, *, recipient_tz: str, category: str, channel: str, now: datetime
) -> Outcome | None:
    """None when the window does not hold the delivery back; else drop or defer-until."""
    if not window.applies_to(category, channel):
        return None
    tz = zone_for(recipient_tz, window.timezone)
    if not in_window(now.astimezone(tz).time(), window.start, window.end):
        return None
    if window.action == "drop":
        return Outcome("drop", None, window)
    return Outcome("defer", window_end(window, tz, now), window)


def combine(
    windows: list[Window], *, recipient_tz: str, category: str, channel: str, now: datetime
) -> Outcome | None:
    """All windows at once: any drop wins; otherwise defer to the latest end (a later
    check at release time catches a window that starts right after)."""
    result: Outcome | None = None
    for window in windows:
        outcome = evaluate(
            window, recipient_tz=recipient_tz, category=category, channel=channel, now=now
        )
        if outcome is None:
            continue
        if outcome.action == "drop":
            return outcome
        if result is None or outcome.until > result.until:
            result = outcome
    return result


def parse_default(spec: str, categories: str, action: str = "defer") -> Window | None:
    """The settings default, written "22:00-08:00" (empty or "off": none)."""
    spec = (spec or "").strip()
    if not spec or spec.lower() in {"off", "none", "0", "false"}:
        return None
    start_s, _, end_s = spec.partition("-")
    start = time.fromisoformat(start_s.strip())
    end = time.fromisoformat(end_s.strip())
    cats = tuple(c.strip() for c in categories.split(",") if c.strip())
    return Window(start=start, end=end, categories=cats, action=action or "defer", name="default")


def active_windows() -> list[Window]:
    """Enabled QuietHours rows; the settings default only while no row exists at all
    (an operator who made rows, even disabled ones, has taken over)."""
    from .models import QuietHours

    rows = list(QuietHours.objects.all())
    if rows:
        return [Window.from_model(p) for p in rows if p.enabled]
    conf = settings.MSGCENTER
    default = parse_default(
        conf.get("DEFAULT_QUIET_HOURS", ""),
        conf.get("DEFAULT_QUIET_CATEGORIES", "marketing"),
        conf.get("DEFAULT_QUIET_ACTION", "defer"),
    )
    return [default] if default else []
