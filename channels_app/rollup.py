"""The dashboard's hourly rollup (DeliveryStat), kept by a beat tick.

`refresh(since)` recomputes every hour from `since` on in one aggregate query and
replaces those rows in one transaction. The tick recomputes the last REFRESH_HOURS, so
receipts and reads that come in later are counted while they are recent; older hours
stay as they were last computed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from .models import DeliveryRecord, DeliveryStat, DeliveryState, Interaction, InteractionKind

REFRESH_HOURS = 48


def hour_floor(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def refresh(since: datetime | None = None, now: datetime | None = None) -> int:
    """Recompute the rollup from the hour of `since` (default: REFRESH_HOURS ago)."""
    now = now or timezone.now()
    start = hour_floor((since or now - timedelta(hours=REFRESH_HOURS)).astimezone(UTC))
    with transaction.atomic():
        _lock()
        stats = _compute(start, now)
        DeliveryStat.objects.filter(hour__gte=start).delete()
        DeliveryStat.objects.bulk_create(stats, batch_size=2000)
    return len(stats)


LOCK_KEY = 0x6D63_7374  # "mcst": one refresh at a time (the tick and a page view may race)


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def _compute(start: datetime, now: datetime) -> list[DeliveryStat]:
    clicked = Interaction.objects.filter(delivery=OuterRef("pk"), kind=InteractionKind.CLICKED)
    rows = (
        DeliveryRecord.objects.filter(created_at__gte=start)
        .order_by()
        .annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .values("hour", "channel", "task__template_id")
        .annotate(
            total=Count("id"),
            sent=Count("id", filter=Q(sent_at__isnull=False)),
            delivered=Count("id", filter=Q(delivered_at__isnull=False)),
            read=Count("id", filter=Q(read_at__isnull=False)),
            clicked=Count("id", filter=Q(Exists(clicked))),
            succeeded=Count(
                "id", filter=Q(state__in=[DeliveryState.SENT, DeliveryState.DELIVERED])
            ),
            failed=Count("id", filter=Q(state=DeliveryState.FAILED)),
            skipped=Count("id", filter=Q(state=DeliveryState.SKIPPED)),
        )
    )
    stats = [
        DeliveryStat(
            hour=r["hour"],
            channel=r["channel"],
            template_id=r["task__template_id"],
            total=r["total"],
            sent=r["sent"],
            delivered=r["delivered"],
            read=r["read"],
            clicked=r["clicked"],
            succeeded=r["succeeded"],
            failed=r["failed"],
            skipped=r["skipped"],
            updated_at=now,
        )
        for r in rows
    ]
    return stats


STALE_AFTER = timedelta(minutes=5)


def last_refresh() -> datetime | None:
    latest = (
        DeliveryStat.objects.order_by("-updated_at").values_list("updated_at", flat=True).first()
    )
    return latest


def ensure_fresh(now: datetime | None = None) -> datetime:
    """Refresh the recent hours when no tick did for a while (no beat running); returns
    the time of the figures."""
    now = now or timezone.now()
    latest = last_refresh()
    if latest is None or latest < now - STALE_AFTER:
        refresh(now=now)
        return now
    return latest
