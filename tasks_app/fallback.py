"""Fallback channels (DESIGN §5.3): a permanent failure on the primary channel creates a
delivery on the template content's `fallback_channel`, linked to the first."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.db.models import F

from channels_app.channels import get_channel
from channels_app.models import DeliveryKind, DeliveryRecord
from channels_app.routing import is_group_channel

from .deliveries import group_delivery, mention, person_delivery
from .models import MessageTask, TaskState


def _mentioned_people(parent: DeliveryRecord) -> list:
    from .models import Recipient

    ids = [m.get("external_id") for m in parent.mentions or [] if m.get("external_id")]
    return list(Recipient.objects.filter(external_id__in=ids))


def create_fallbacks(failed: list[DeliveryRecord]) -> list[DeliveryRecord]:
    """Create (and plan) fallback deliveries for permanently failed primary deliveries."""
    from .tasks import plan_task_job

    primaries = [d for d in failed if d.kind == DeliveryKind.PRIMARY]
    if not primaries:
        return []
    tasks = MessageTask.objects.select_related("template_version").in_bulk(
        {d.task_id for d in primaries}
    )
    by_task: dict = defaultdict(list)
    for d in primaries:
        task = tasks.get(d.task_id)
        if task is None or task.state != TaskState.PUSHING:
            continue
        content = task.template_version.content_for(d.channel) or {}
        fallback = content.get("fallback_channel") or ""
        if fallback and fallback != d.channel and get_channel(fallback):
            by_task[task].append((d, fallback))
    created: list[DeliveryRecord] = []
    grouped: dict[tuple[str, int | None], bool] = {}
    with transaction.atomic():
        for task, items in by_task.items():
            rows = []
            group_rows: dict[str, DeliveryRecord] = {}
            for d, channel in items:
                kind = get_channel(channel)
                pinned = (task.template_version.content_for(channel) or {}).get("account")
                if (channel, pinned) not in grouped:  # one routing lookup per channel
                    grouped[channel, pinned] = is_group_channel(channel, pinned)
                fields = {
                    "task": task,
                    "kind": DeliveryKind.FALLBACK,
                    "parent": d,
                    "account_id": pinned,
                }
                people = [d.recipient] if d.recipient is not None else _mentioned_people(d)
                if grouped[channel, pinned]:
                    # One post per fallback channel, mentioning everyone it stands in for.
                    row = group_rows.get(channel)
                    if row is None:
                        row = group_delivery(recipients=[], channel_kind=kind, **fields)
                        group_rows[channel] = row
                        rows.append(row)
                    row.mentions += [mention(r, kind) for r in people]
                else:
                    # A failed group post reaches each mentioned person instead.
                    rows += [
                        person_delivery(recipient=r, channel_kind=kind, **fields) for r in people
                    ]
            DeliveryRecord.objects.bulk_create(rows)
            MessageTask.objects.filter(pk=task.pk).update(
                delivery_count=F("delivery_count") + len(rows)
            )
            created += rows
            transaction.on_commit(
                lambda pk=str(task.pk): plan_task_job.apply_async(args=[pk], queue="dispatch")
            )
    return created
