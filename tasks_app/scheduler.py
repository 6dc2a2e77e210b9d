"""The beat ticks (DESIGN §5.6). Rows are claimed in batches with
SELECT ... FOR UPDATE SKIP LOCKED, so two ticks (or two workers) never move the same
row twice. Never one PeriodicTask per message."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from channels_app.models import DeliveryRecord, DeliveryState
from channels_app.sending import enqueue_ids
from channels_app.transitions import bulk_transition

from . import pipeline, reminders
from .models import MessageTask, TaskState

BATCH = 500
MAX_BATCHES = 20


def release_due_tasks(now: datetime | None = None, limit: int = BATCH) -> int:
    """Scheduled tasks whose send_at has come: scheduled -> pushing, then plan them."""
    from .tasks import plan_task_job

    now = now or timezone.now()
    released = 0
    with transaction.atomic():
        tasks = list(
            MessageTask.objects.select_for_update(skip_locked=True)
            .filter(state=TaskState.SCHEDULED, send_at__lte=now)
            .order_by("send_at")[:limit]
        )
        for task in tasks:
            task.release(by="release_due", note=f"due at {task.send_at.isoformat()}")
            task.save(update_fields=["state"])
            released += 1
            transaction.on_commit(
                lambda pk=str(task.pk): plan_task_job.apply_async(args=[pk], queue="dispatch")
            )
    return released


def release_due_deliveries(now: datetime | None = None, limit: int = BATCH) -> dict[str, int]:
    """One batch of deferred deliveries whose not_before has come: plan them again
    (policies included) and enqueue those that may go. Returns counts, with `claimed`."""
    now = now or timezone.now()
    with transaction.atomic():
        batch = list(
            DeliveryRecord.objects.select_for_update(skip_locked=True, of=("self",))
            .due(now)
            .select_related("recipient")
            .order_by("not_before")[:limit]
        )
        if not batch:
            return {"claimed": 0}
        counts = pipeline.release_deliveries(batch, now=now)
    return {"claimed": len(batch), **counts}


def release_due(now: datetime | None = None, max_batches: int = MAX_BATCHES) -> dict[str, int]:
    """The beat tick: due scheduled tasks, due deferred deliveries, due read reminders.
    Each kind is worked in batches until none is left (or `max_batches`, so that one
    tick never runs for long; the next tick goes on)."""
    totals: dict[str, int] = defaultdict(int)
    for _ in range(max_batches):
        n = release_due_tasks(now)
        totals["tasks"] += n
        if n < BATCH:
            break
    for _ in range(max_batches):
        counts = release_due_deliveries(now)
        claimed = counts.pop("claimed")
        totals["deliveries"] += claimed
        for key, value in counts.items():
            totals[f"deliveries_{key}"] += value
        if claimed < BATCH:
            break
    for _ in range(max_batches):
        counts = reminders.send_due(now)
        n = sum(v for k, v in counts.items() if not k.startswith("reminder_"))
        totals["reminders"] += n
        if n < reminders.BATCH:
            break
    return dict(totals)


def sweep_stuck(now: datetime | None = None, limit: int = 5000) -> dict[str, int]:
    """Re-enqueue `queued`/`sending` rows whose lease ran out (a worker died or a
    message was lost). A `sending` row goes back to `queued` first; the claim in
    send_chunk makes sure nothing is sent twice."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.MSGCENTER["SEND_LEASE_SECONDS"])
    by_channel: dict[str, list[int]] = defaultdict(list)
    with transaction.atomic():
        rows = list(
            DeliveryRecord.objects.select_for_update(skip_locked=True)
            .filter(state__in=[DeliveryState.QUEUED, DeliveryState.SENDING], lease_until__lt=now)
            .values_list("id", "channel", "state")[:limit]
        )
        stuck_sending = [r[0] for r in rows if r[2] == DeliveryState.SENDING]
        if stuck_sending:
            bulk_transition(
                DeliveryRecord.objects.filter(id__in=stuck_sending),
                DeliveryRecord.retry,
                not_before=None,
            )
        if rows:
            DeliveryRecord.objects.filter(id__in=[r[0] for r in rows]).update(
                lease_until=now + lease
            )
        for pk, channel, _state in rows:
            by_channel[channel].append(pk)
        transaction.on_commit(lambda: [enqueue_ids(c, ids) for c, ids in by_channel.items()])
    return {"requeued": len(rows), "were_sending": len(stuck_sending)}
