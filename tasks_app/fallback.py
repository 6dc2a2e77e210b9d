"""Fallback channels (DESIGN §5.3): a permanent failure on the primary channel creates a
delivery on the template content's `fallback_channel`, linked to the first."""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.db.models import F

from channels_app.channels import get_channel
from channels_app.models import DeliveryKind, DeliveryRecord, DeliveryState, SkipReason
from channels_app.routing import is_group_channel

from .models import MessageTask, TaskState


def _person_rows(task, parent: DeliveryRecord, channel: str, pinned) -> list[DeliveryRecord]:
    from .models import Recipient

    kind = get_channel(channel)
    ids = [m.get("external_id") for m in parent.mentions or [] if m.get("external_id")]
    rows = []
    for r in Recipient.objects.filter(external_id__in=ids):
        address = kind.address_for(r)
        if address:
            rows.append(
                DeliveryRecord(
                    task=task,
                    recipient=r,
                    channel=channel,
                    kind=DeliveryKind.FALLBACK,
                    parent=parent,
                    account_id=pinned,
                    address=address,
                )
            )
        else:
            rows.append(
                DeliveryRecord(
                    task=task,
                    recipient=r,
                    channel=channel,
                    kind=DeliveryKind.FALLBACK,
                    parent=parent,
                    state=DeliveryState.SKIPPED,
                    reason=SkipReason.NO_ADDRESS,
                )
            )
    return rows


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
    with transaction.atomic():
        for task, items in by_task.items():
            rows = []
            group_rows: dict[str, DeliveryRecord] = {}
            for d, channel in items:
                kind = get_channel(channel)
                pinned = (task.template_version.content_for(channel) or {}).get("account")
                recipient = d.recipient
                if is_group_channel(channel, pinned):
                    row = group_rows.get(channel)
                    if row is None:
                        row = DeliveryRecord(
                            task=task,
                            channel=channel,
                            kind=DeliveryKind.FALLBACK,
                            parent=d,
                            account_id=pinned,
                            mentions=[],
                        )
                        group_rows[channel] = row
                        rows.append(row)
                    if recipient is not None:
                        row.mentions.append(
                            {
                                "external_id": recipient.external_id,
                                "name": recipient.name,
                                "phone": recipient.phone,
                                "address": kind.address_for(recipient),
                            }
                        )
                    continue
                if recipient is None:
                    # A group delivery failed: reach each mentioned person instead.
                    rows += _person_rows(task, d, channel, pinned)
                    continue
                address = kind.address_for(recipient)
                row = DeliveryRecord(
                    task=task,
                    recipient=recipient,
                    channel=channel,
                    kind=DeliveryKind.FALLBACK,
                    parent=d,
                    account_id=pinned,
                    address=address,
                )
                if not address:
                    row = DeliveryRecord(
                        task=task,
                        recipient=recipient,
                        channel=channel,
                        kind=DeliveryKind.FALLBACK,
                        parent=d,
                        state=DeliveryState.SKIPPED,
                        reason=SkipReason.NO_ADDRESS,
                    )
                rows.append(row)
            DeliveryRecord.objects.bulk_create(rows)
            MessageTask.objects.filter(pk=task.pk).update(
                delivery_count=F("delivery_count") + len(rows)
            )
            created += rows
            transaction.on_commit(
                lambda pk=str(task.pk): plan_task_job.apply_async(args=[pk], queue="dispatch")
            )
    return created
