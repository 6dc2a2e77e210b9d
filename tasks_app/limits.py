"""Content dedup and per-day frequency caps (DESIGN §7), counted in Redis (msgcenter.kv).

Both are checked when a delivery is planned and counted only when it really went out
(the `deliveries_sent` signal), so a failed or skipped send never uses up a cap.

- Dedup: the same recipient, template, channel and rendered content within the window
  (template `dedup_window_seconds`, default MSGCENTER["DEDUP_WINDOW_SECONDS"]; 0: off).
  The key holds the time of the last send, so the window is judged against `now`.
- Caps: at most N sends per recipient, channel and local day. A template's own
  `daily_cap` counts that template's sends; otherwise the category's cap
  (MSGCENTER["DAILY_CAPS"], e.g. marketing: 3) counts the category's. Days are
  the recipient's days (their timezone), so a cap resets at their midnight. 0: off."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from msgcenter import kv

from .quiet_hours import zone_for

CONTENT_FIELDS = ("subject", "body", "body_html", "extra")


def dedup_window(version_settings: dict[str, Any] | None) -> int:
    value = (version_settings or {}).get("dedup_window_seconds")
    return int(settings.MSGCENTER.get("DEDUP_WINDOW_SECONDS", 300) if value is None else value)


def daily_cap(version_settings: dict[str, Any] | None, category: str) -> tuple[int, str]:
    """(cap, scope): the template's own cap counts per template, else the category's."""
    value = (version_settings or {}).get("daily_cap")
    if value is not None:
        return int(value), "template"
    return int(settings.MSGCENTER.get("DAILY_CAPS", {}).get(category, 0)), "category"


def content_digest(content: dict[str, Any]) -> str:
    data = {k: content.get(k) for k in CONTENT_FIELDS if content.get(k)}
    raw = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    if content.get("unsubscribe_url"):
        # The link differs per delivery; the message does not.
        raw = raw.replace(content["unsubscribe_url"], "")
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def dedup_key(d: Any, template: str, content: dict[str, Any]) -> str:
    return f"dd:r{d.recipient_id}:{template}:{d.channel}:{content_digest(content)}"


def local_day(d: Any, now: datetime) -> str:
    tz = zone_for(d.recipient.timezone if d.recipient_id else "")
    return now.astimezone(tz).date().isoformat()


def seconds_to_local_midnight(d: Any, now: datetime) -> int:
    tz = zone_for(d.recipient.timezone if d.recipient_id else "")
    local = now.astimezone(tz)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return max(1, int((midnight - local).total_seconds()))


def cap_key(d: Any, scope: str, template: str, category: str, now: datetime) -> str:
    name = f"t:{template}" if scope == "template" else f"c:{category}"
    return f"cap:{name}:r{d.recipient_id}:{d.channel}:{local_day(d, now)}"


def category_cap_key(d: Any, category: str, now: datetime) -> str:
    return f"cap:c:{category}:r{d.recipient_id}:{d.channel}:{local_day(d, now)}"


# --- planning-time checks ---------------------------------------------------------------


def find_duplicates(
    deliveries: list, *, template: str, window: int, now: datetime, content_of
) -> set[int]:
    """Ids of person deliveries whose content went to the same recipient within `window`
    s (or repeats within this batch). `content_of(d)` renders a delivery. Group posts
    (robots, webhooks) have no recipient and are not deduplicated."""
    deliveries = [d for d in deliveries if d.recipient_id]
    if window <= 0 or not deliveries:
        return set()
    keys = {d.pk: dedup_key(d, template, content_of(d)) for d in deliveries}
    last_sent = kv.get_many(set(keys.values()))
    duplicates, seen = set(), set()
    for d in deliveries:
        key = keys[d.pk]
        stamp = last_sent.get(key)
        if key in seen or (stamp and now.timestamp() - float(stamp) < window):
            duplicates.add(d.pk)
        seen.add(key)
    return duplicates


def find_capped(
    deliveries: list, *, template: str, category: str, cap: int, scope: str, now: datetime
) -> set[int]:
    """Ids of person deliveries over the day's cap, counting earlier ones of this batch."""
    people = [d for d in deliveries if d.recipient_id]
    if cap <= 0 or not people:
        return set()
    keys = {d.pk: cap_key(d, scope, template, category, now) for d in people}
    counts = {k: int(v or 0) for k, v in kv.get_many(set(keys.values())).items()}
    capped = set()
    for d in people:
        key = keys[d.pk]
        if counts.get(key, 0) >= cap:
            capped.add(d.pk)
        else:
            counts[key] = counts.get(key, 0) + 1
    return capped


# --- counting real sends ----------------------------------------------------------------


def count_sent(
    deliveries: Iterable[Any], settings_by_task: dict[Any, dict[str, Any]], now: datetime
) -> None:
    """Record sends that went out: last-send stamps for dedup, day counters for caps."""
    stamps: dict[str, str] = {}
    stamp_ttl = 1
    amounts: dict[str, int] = {}
    ttls: dict[str, int] = {}
    for d in deliveries:
        content = d.content or {}
        template, category = content.get("template", ""), content.get("category", "")
        version_settings = settings_by_task.get(d.task_id, {})
        if not d.recipient_id:
            continue
        window = dedup_window(version_settings)
        if window > 0 and template:
            stamps[dedup_key(d, template, content)] = f"{now.timestamp():.3f}"
            stamp_ttl = max(stamp_ttl, window)
        # A send counts towards its category when the category has a cap, and towards
        # its template when the template has a cap of its own; uncapped sends cost nothing.
        keys = []
        if int(settings.MSGCENTER.get("DAILY_CAPS", {}).get(category, 0)) > 0:
            keys.append(category_cap_key(d, category, now))
        cap, scope = daily_cap(version_settings, category)
        if scope == "template" and cap > 0:
            keys.append(cap_key(d, "template", template, category, now))
        if not keys:
            continue
        ttl = seconds_to_local_midnight(d, now) + 3600
        for key in keys:
            amounts[key] = amounts.get(key, 0) + 1
            ttls[key] = ttl
    kv.set_many(stamps, stamp_ttl)
    kv.incr_many(amounts, ttls)
