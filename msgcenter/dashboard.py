"""The admin home: the staff's delivery dashboard (django-unfold DASHBOARD_CALLBACK).

For a period (24h / 7d / 30d), optionally one channel and one template: deliveries over
time per channel, success rate per channel, the funnel sent -> delivered -> read ->
clicked, latency from task creation to sent (p50/p95), the backlog, top errors and top
templates. Counts come from the hourly rollup (channels_app.rollup, kept by a beat tick),
so the dashboard reads thousands of rows, not millions; latency percentiles are computed
with percentile_cont over the deliveries themselves (over a block sample of them when the
period holds more than LATENCY_SAMPLE sent rows); top errors and the backlog use indexes.
Every figure is one query, whatever the row count, and the result is cached briefly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Min, Sum
from django.db.models.functions import Substr
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from channels_app import rollup
from channels_app.models import DeliveryRecord, DeliveryStat, DeliveryState
from tasks_app.models import MessageTask, TaskState
from templates_app.models import MessageTemplate

PERIODS = {
    "24h": (timedelta(hours=24), "hour", _("Last 24 hours")),
    "7d": (timedelta(days=7), "day", _("Last 7 days")),
    "30d": (timedelta(days=30), "day", _("Last 30 days")),
}
DEFAULT_PERIOD = "24h"
SUCCEEDED = (DeliveryState.SENT, DeliveryState.DELIVERED)
BACKLOG_STATES = (
    DeliveryState.PENDING,
    DeliveryState.DEFERRED,
    DeliveryState.QUEUED,
    DeliveryState.SENDING,
)
TOP = 8
# Chart colours per channel (stable order), then a fallback palette.
PALETTE = [
    "#7c3aed",
    "#0ea5e9",
    "#22c55e",
    "#f59e0b",
    "#ef4444",
    "#14b8a6",
    "#ec4899",
    "#6366f1",
    "#84cc16",
    "#f97316",
    "#64748b",
    "#a855f7",
]


@dataclass(frozen=True)
class Filters:
    period: str = DEFAULT_PERIOD
    channel: str = ""
    template: int | None = None

    @classmethod
    def from_request(cls, request: HttpRequest) -> Filters:
        from channels_app.channels import CHANNELS

        period = request.GET.get("period", DEFAULT_PERIOD)
        channel = request.GET.get("channel", "")
        template = request.GET.get("template", "")
        return cls(
            period=period if period in PERIODS else DEFAULT_PERIOD,
            channel=channel if channel in CHANNELS else "",
            template=int(template) if template.isdigit() else None,
        )

    @property
    def since_delta(self) -> timedelta:
        return PERIODS[self.period][0]

    @property
    def bucket(self) -> str:
        return PERIODS[self.period][1]

    def cache_key(self) -> str:
        return f"msgcenter:dashboard:{self.period}:{self.channel}:{self.template or ''}"


# --- selectors (one query each) ------------------------------------------------------


def deliveries_in(filters: Filters, since: datetime):
    qs = DeliveryRecord.objects.filter(created_at__gte=since)
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.template:
        qs = qs.filter(task__template_id=filters.template)
    return qs


STAGES = ("total", "sent", "delivered", "read", "clicked", "succeeded", "failed", "skipped")


def stats_in(filters: Filters, since: datetime):
    """Rollup rows of the period (hour-aligned: the first hour counts whole)."""
    qs = DeliveryStat.objects.filter(hour__gte=rollup.hour_floor(since))
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.template:
        qs = qs.filter(template_id=filters.template)
    return qs


def _rate(row: dict[str, Any]) -> float | None:
    done = row["succeeded"] + row["failed"]
    return round(100.0 * row["succeeded"] / done, 1) if done else None


def per_channel(filters: Filters, since: datetime) -> list[dict[str, Any]]:
    """Per channel: totals, the funnel stages reached and the terminal outcomes."""
    rows = (
        stats_in(filters, since)
        .order_by()
        .values("channel")
        .annotate(**{key: Sum(key) for key in STAGES})
        .order_by("channel")
    )
    return [{**row, "success_rate": _rate(row)} for row in rows]


def over_time(filters: Filters, since: datetime) -> list[tuple[datetime, str, int]]:
    rows = stats_in(filters, since).order_by().values("hour", "channel").annotate(n=Sum("total"))
    return [(r["hour"], r["channel"], r["n"]) for r in rows]


def backlog(filters: Filters) -> dict[str, Any]:
    """What waits right now (not bound to the period): open deliveries per state (index
    on (state, not_before)), the next deferred release and the scheduled tasks."""
    qs = DeliveryRecord.objects.filter(state__in=BACKLOG_STATES)
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.template:
        qs = qs.filter(task__template_id=filters.template)
    counts = dict.fromkeys(BACKLOG_STATES, 0)
    for row in qs.order_by().values("state").annotate(n=Count("id")):
        counts[row["state"]] = row["n"]
    next_release = qs.filter(state=DeliveryState.DEFERRED).aggregate(at=Min("not_before"))["at"]
    tasks = MessageTask.objects.filter(state=TaskState.SCHEDULED)
    if filters.template:
        tasks = tasks.filter(template_id=filters.template)
    return {"counts": counts, "next_release": next_release, "scheduled_tasks": tasks.count()}


def top_errors(filters: Filters, since: datetime) -> list[dict[str, Any]]:
    return list(
        deliveries_in(filters, since)
        .filter(state=DeliveryState.FAILED)
        .order_by()
        .annotate(message=Substr("error", 1, 160))
        .values("message", "channel")
        .annotate(n=Count("id"))
        .order_by("-n", "message")[:TOP]
    )


def top_templates(filters: Filters, since: datetime) -> list[dict[str, Any]]:
    rows = list(
        stats_in(filters, since)
        .order_by()
        .values("template_id")
        .annotate(total=Sum("total"), succeeded=Sum("succeeded"), failed=Sum("failed"))
        .order_by("-total")[:TOP]
    )
    names = dict(
        MessageTemplate.objects.filter(pk__in=[r["template_id"] for r in rows]).values_list(
            "pk", "code"
        )
    )
    return [
        {
            "id": r["template_id"],
            "code": names.get(r["template_id"], f"#{r['template_id']}"),
            "total": r["total"],
            "failed": r["failed"],
            "success_rate": _rate(r),
        }
        for r in rows
    ]


def _percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation, as PostgreSQL's percentile_cont."""
    if not values:
        return None
    values = sorted(values)
    pos = (len(values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


SQLITE_LATENCY_SAMPLE = 20_000
# Above this many sent deliveries in the period, percentiles come from a block sample.
LATENCY_SAMPLE = 50_000


def latency(filters: Filters, since: datetime, sent: int = 0) -> dict[str, dict[str, float | None]]:
    """Seconds from task creation to sent, p50 and p95, per channel and for all:
    percentile_cont in PostgreSQL (over a TABLESAMPLE of the deliveries when `sent`, the
    period's sent count, is large); on SQLite the latest rows are read and sorted."""
    if connection.vendor == "postgresql":
        sample = ""
        if sent > LATENCY_SAMPLE:
            sample = f"TABLESAMPLE SYSTEM ({100.0 * LATENCY_SAMPLE / sent:.4f}) REPEATABLE (1)"
        where = ["d.created_at >= %s", "d.sent_at IS NOT NULL"]
        args: list[Any] = [since]
        if filters.channel:
            where.append("d.channel = %s")
            args.append(filters.channel)
        if filters.template:
            where.append("t.template_id = %s")
            args.append(filters.template)
        sql = f"""
            SELECT d.channel,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY s.seconds),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY s.seconds)
            FROM {DeliveryRecord._meta.db_table} d {sample}
            JOIN {MessageTask._meta.db_table} t ON t.id = d.task_id
            CROSS JOIN LATERAL (SELECT GREATEST(EXTRACT(EPOCH FROM d.sent_at - t.created_at),
                                                0) AS seconds) s
            WHERE {" AND ".join(where)}
            GROUP BY GROUPING SETS ((d.channel), ())
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            rows = cursor.fetchall()
        # The grand total (the empty grouping set) comes with a NULL channel: key "".
        return {channel or "": {"p50": _num(p50), "p95": _num(p95)} for channel, p50, p95 in rows}
    rows = list(
        deliveries_in(filters, since)
        .filter(sent_at__isnull=False)
        .order_by("-id")
        .values_list("channel", "sent_at", "task__created_at")[:SQLITE_LATENCY_SAMPLE]
    )
    by_channel: dict[str, list[float]] = {}
    for channel, sent_at, created_at in rows:
        seconds = max((sent_at - created_at).total_seconds(), 0.0)
        by_channel.setdefault(channel, []).append(seconds)
        by_channel.setdefault("", []).append(seconds)
    return {
        channel: {"p50": _percentile(v, 0.5), "p95": _percentile(v, 0.95)}
        for channel, v in by_channel.items()
    }


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def stats(filters: Filters, now: datetime | None = None) -> dict[str, Any]:
    """Every figure of the dashboard, as plain data (cacheable, language-free)."""
    now = now or timezone.now()
    since = now - filters.since_delta
    as_of = rollup.ensure_fresh(now)
    channels = per_channel(filters, since)
    return {
        "since": since,
        "now": now,
        "as_of": as_of,
        "channels": channels,
        "series": over_time(filters, since),
        "clicked": sum(row["clicked"] for row in channels),
        "backlog": backlog(filters),
        "errors": top_errors(filters, since),
        "templates": top_templates(filters, since),
        "latency": latency(filters, since, sent=sum(row["sent"] for row in channels)),
    }


def cached_stats(filters: Filters) -> dict[str, Any]:
    ttl = getattr(settings, "MSGCENTER_DASHBOARD_CACHE_SECONDS", 15)
    if ttl <= 0:
        return stats(filters)
    data = cache.get(filters.cache_key())
    if data is None:
        data = stats(filters)
        cache.set(filters.cache_key(), data, ttl)
    return data


# --- presentation -------------------------------------------------------------------


def _buckets(since: datetime, now: datetime, bucket: str) -> list[datetime]:
    tz = timezone.get_current_timezone()
    start = timezone.localtime(since, tz)
    if bucket == "hour":
        start = start.replace(minute=0, second=0, microsecond=0)
        step = timedelta(hours=1)
    else:
        start = start.replace(hour=0, minute=0, second=0, microsecond=0)
        step = timedelta(days=1)
    out = []
    current = start
    while current <= now:
        out.append(current)
        # Re-localize: a day step across a DST change keeps midnight.
        current = timezone.localtime(current + step, tz)
        if bucket == "day":
            current = current.replace(hour=0, minute=0, second=0, microsecond=0)
    return out


def _color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def over_time_chart(data: dict[str, Any], filters: Filters) -> dict[str, Any]:
    buckets = _buckets(data["since"], data["now"], filters.bucket)
    fmt = "%H:00" if filters.bucket == "hour" else "%m-%d"
    index = {timezone.localtime(b).replace(tzinfo=None): i for i, b in enumerate(buckets)}
    channels = sorted({channel for _bucket, channel, _n in data["series"]})
    values = {c: [0] * len(buckets) for c in channels}
    for hour, channel, n in data["series"]:
        local = timezone.localtime(hour).replace(minute=0, second=0, microsecond=0)
        if filters.bucket == "day":
            local = local.replace(hour=0)
        i = index.get(local.replace(tzinfo=None))
        if i is not None:
            values[channel][i] += n
    return {
        "labels": [b.strftime(fmt) for b in buckets],
        "datasets": [
            {"label": c, "data": values[c], "backgroundColor": _color(i), "stack": "deliveries"}
            for i, c in enumerate(channels)
        ],
    }


def _chart_options(
    *,
    stacked: bool = False,
    legend: bool = True,
    horizontal: bool = False,
    max_value: float | None = None,
) -> str:
    value_axis = {
        "stacked": stacked,
        "beginAtZero": True,
        "ticks": {"color": "#9ca3af", "precision": 0},
        "grid": {"color": "rgba(156,163,175,.2)"},
    }
    if max_value is not None:
        value_axis["max"] = max_value
    category_axis = {
        "stacked": stacked,
        "ticks": {"color": "#9ca3af", "autoSkip": True},
        "grid": {"display": False},
    }
    options = {
        "responsive": True,
        "maintainAspectRatio": False,
        "animation": False,
        "indexAxis": "y" if horizontal else "x",
        "plugins": {
            "legend": {
                "display": legend,
                "position": "bottom",
                "labels": {"color": "#9ca3af", "boxWidth": 10},
            },
            "tooltip": {"enabled": True},
        },
        "scales": {
            "x": value_axis if horizontal else category_axis,
            "y": category_axis if horizontal else value_axis,
        },
        "datasets": {"bar": {"borderRadius": 4}},
    }
    return json.dumps(options)


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def build_context(request: HttpRequest) -> dict[str, Any]:
    from channels_app.channels import CHANNELS

    filters = Filters.from_request(request)
    data = cached_stats(filters)
    channels = data["channels"]
    totals = {
        key: sum(row[key] for row in channels)
        for key in ("total", "sent", "delivered", "read", "succeeded", "failed", "skipped")
    }
    funnel_values = [totals["sent"], totals["delivered"], totals["read"], data["clicked"]]
    funnel_labels = [str(_("Sent")), str(_("Delivered")), str(_("Read")), str(_("Clicked"))]
    funnel = [
        {"label": label, "value": value, "pct": _pct(value, totals["sent"])}
        for label, value in zip(funnel_labels, funnel_values, strict=True)
    ]
    rates = [row for row in channels if row["success_rate"] is not None]
    latency = data["latency"]
    deliveries_url = reverse("admin:channels_app_deliveryrecord_changelist")
    since_local = timezone.localtime(data["since"])

    def deliveries_link(**params: Any) -> str:
        params = {
            "created_at_from_0": since_local.strftime("%Y-%m-%d"),
            "created_at_from_1": since_local.strftime("%H:%M"),
            **params,
        }
        if filters.template:
            params["task__template__id__exact"] = filters.template
        return f"{deliveries_url}?{urlencode(params)}"

    errors = [
        {**row, "url": deliveries_link(state__exact="failed", channel=row["channel"])}
        for row in data["errors"]
    ]
    backlog_data = data["backlog"]
    return {
        "filters": filters,
        "periods": [(key, label) for key, (_d, _b, label) in PERIODS.items()],
        "channel_choices": [(kind.kind, kind.label) for kind in CHANNELS.values()],
        "template_choices": list(
            MessageTemplate.objects.order_by("code").values_list("id", "code")
        ),
        "totals": totals,
        "success_rate": _pct(totals["succeeded"], totals["succeeded"] + totals["failed"]),
        "latency_all": {
            "p50": _duration((latency.get("") or {}).get("p50")),
            "p95": _duration((latency.get("") or {}).get("p95")),
        },
        "channel_rows": [
            {
                **row,
                "p50": _duration((latency.get(row["channel"]) or {}).get("p50")),
                "p95": _duration((latency.get(row["channel"]) or {}).get("p95")),
                "url": deliveries_link(channel=row["channel"]),
            }
            for row in channels
        ],
        "funnel": funnel,
        "backlog": backlog_data,
        "backlog_total": sum(backlog_data["counts"].values()),
        "deferred_url": f"{deliveries_url}?{urlencode({'state__exact': 'deferred'})}",
        "queued_url": f"{deliveries_url}?{urlencode({'state__exact': 'queued'})}",
        "top_errors": errors,
        "top_templates": data["templates"],
        "chart_over_time": json.dumps(over_time_chart(data, filters)),
        "chart_over_time_options": _chart_options(stacked=True),
        "chart_success": json.dumps(
            {
                "labels": [row["channel"] for row in rates],
                "datasets": [
                    {
                        "label": str(_("Success rate (%)")),
                        "data": [row["success_rate"] for row in rates],
                        "backgroundColor": [_color(i) for i in range(len(rates))],
                    }
                ],
            }
        ),
        "chart_success_options": _chart_options(legend=False, max_value=100),
        "chart_funnel": json.dumps(
            {
                "labels": funnel_labels,
                "datasets": [
                    {
                        "label": str(_("Deliveries")),
                        "data": funnel_values,
                        "backgroundColor": ["#7c3aed", "#0ea5e9", "#22c55e", "#f59e0b"],
                    }
                ],
            }
        ),
        "chart_funnel_options": _chart_options(legend=False, horizontal=True),
        "computed_at": data["as_of"],
    }


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    context.update(build_context(request))
    context["title"] = _("Delivery dashboard")
    return context
