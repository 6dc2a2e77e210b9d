"""Read reminders (阅读提醒, DESIGN §8): "if the in-app message is still unread after T,
remind through channel C".

When an in-app delivery of a template with `remind_after_seconds` and `remind_channel`
goes out, a ReadReminder waits for `sent_at + T`. The beat tick (`release_due`) claims
due ones with SKIP LOCKED; for each still unread and not recalled it creates a delivery
of kind `reminder` linked to the first (`parent`) and plans it like any other (opt-outs,
quiet hours, dedup and caps apply)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from channels_app.channels import get_channel
from channels_app.models import DeliveryKind, DeliveryRecord

from .models import MessageTask, ReadReminder, ReminderState

BATCH = 500


def reminder_settings(version_settings: dict[str, Any] | None) -> tuple[int, str] | None:
    s = version_settings or {}
    after, channel = s.get("remind_after_seconds"), s.get("remind_channel")
    if not after or not channel or channel == "inapp" or get_channel(channel) is None:
        return None
    return int(after), channel


def schedule(deliveries: list, settings_by_task: dict[Any, dict[str, Any]]) -> int:
    """Create the ReadReminders of in-app deliveries that just went out."""
    rows = []
    for d in deliveries:
        if d.channel != "inapp" or d.kind != DeliveryKind.PRIMARY or not d.recipient_id:
            continue
        conf = reminder_settings(settings_by_task.get(d.task_id))
        if conf is None:
            continue
        after, channel = conf
        sent_at = d.sent_at or timezone.now()
        rows.append(
            ReadReminder(
                delivery_id=d.pk, channel=channel, due_at=sent_at + timedelta(seconds=after)
            )
        )
    if rows:
        with transaction.atomic():  # a savepoint when called inside a transaction
            ReadReminder.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def send_due(now: datetime | None = None, limit: int = BATCH) -> dict[str, int]:
    """Act on one batch of due reminders. Returns counts per outcome."""
    from .pipeline import plan_rows

    now = now or timezone.now()
    counts: dict[str, int] = defaultdict(int)
    with transaction.atomic():
        due = list(
            ReadReminder.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=ReminderState.WAITING, due_at__lte=now)
            .select_related("delivery", "delivery__recipient")
            .order_by("due_at")[:limit]
        )
        if not due:
            return {}
        new_rows: list[DeliveryRecord] = []
        for r in due:
            parent = r.delivery
            r.done_at = now
            if parent.recalled_at is not None:
                r.state = ReminderState.RECALLED
            elif parent.read_at is not None:
                r.state = ReminderState.READ
            else:
                kind = get_channel(r.channel)
                address = kind.address_for(parent.recipient) if kind else ""
                if not address:
                    r.state = ReminderState.NO_ADDRESS
                else:
                    r.state = ReminderState.SENT
                    r.reminder = DeliveryRecord(
                        task_id=parent.task_id,
                        recipient=parent.recipient,
                        channel=r.channel,
                        kind=DeliveryKind.REMINDER,
                        parent=parent,
                        address=address,
                        created_at=now,
                    )
                    new_rows.append(r.reminder)
            counts[r.state] += 1
        DeliveryRecord.objects.bulk_create(new_rows)
        for r in due:
            if r.reminder is not None:
                r.reminder_id = r.reminder.pk
        ReadReminder.objects.bulk_update(due, ["state", "done_at", "reminder"])
        per_task: dict[Any, int] = defaultdict(int)
        for d in new_rows:
            per_task[d.task_id] += 1
        for task_id, n in per_task.items():
            MessageTask.objects.filter(pk=task_id).update(delivery_count=F("delivery_count") + n)
        if new_rows:
            planned = plan_rows(new_rows, now=now)
            counts.update({f"reminder_{k}": v for k, v in planned.items()})
    return dict(counts)
