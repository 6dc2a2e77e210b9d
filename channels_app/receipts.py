"""Provider receipts and interactions: verified callback events mapped onto deliveries
(DESIGN §5.4). One place, used by the callbacks endpoint and anything else that learns
about a delivery's fate."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction
from django.utils import timezone

from .channels import CallbackEvent
from .models import ChannelAccount, DeliveryRecord, Interaction, InteractionKind
from .signals import deliveries_finished
from .transitions import bulk_transition

# Event status -> interaction kind recorded for it.
INTERACTIONS = {
    "delivered": InteractionKind.DELIVERED,
    "failed": InteractionKind.FAILED,
    "bounced": InteractionKind.BOUNCED,
    "read": InteractionKind.READ,
    "opened": InteractionKind.READ,
    "clicked": InteractionKind.CLICKED,
    "replied": InteractionKind.REPLIED,
    "complained": InteractionKind.COMPLAINED,
    "unsubscribed": InteractionKind.UNSUBSCRIBED,
}
FAILURES = {"failed", "bounced"}


def apply_events(*, account: ChannelAccount, events: list[CallbackEvent]) -> dict[str, Any]:
    """Map events to delivery states and Interaction rows. Unknown message ids are
    reported back, not errors (providers retry callbacks we refuse)."""
    ids = {e.provider_message_id for e in events if e.provider_message_id}
    now = timezone.now()
    with transaction.atomic():
        deliveries = {
            d.provider_message_id: d
            for d in DeliveryRecord.objects.select_for_update().filter(
                provider_message_id__in=ids, account=account
            )
        }
        by_status: dict[str, list[int]] = defaultdict(list)
        errors: dict[int, str] = {}
        interactions = []
        unknown = []
        for e in events:
            d = deliveries.get(e.provider_message_id)
            if d is None:
                unknown.append(e.provider_message_id)
                continue
            by_status[e.status].append(d.pk)
            if e.error:
                errors[d.pk] = e.error
            kind = INTERACTIONS.get(e.status)
            if kind:
                interactions.append(
                    Interaction(delivery=d, kind=kind, payload=e.payload, created_at=now)
                )
        qs = DeliveryRecord.objects.all()
        if by_status.get("delivered"):
            bulk_transition(
                qs.filter(id__in=by_status["delivered"]),
                DeliveryRecord.mark_delivered,
                delivered_at=now,
            )
        failed_ids = [pk for status in FAILURES for pk in by_status.get(status, [])]
        if failed_ids:
            bulk_transition(qs.filter(id__in=failed_ids), DeliveryRecord.fail, failed_at=now)
            for pk, error in errors.items():
                if pk in failed_ids:
                    DeliveryRecord.objects.filter(pk=pk).update(error=error[:2000])
        read_ids = by_status.get("read", []) + by_status.get("opened", [])
        if read_ids:
            qs.filter(id__in=read_ids, read_at__isnull=True).update(read_at=now)
        Interaction.objects.bulk_create(interactions)
    if failed_ids:
        deliveries_finished.send(
            sender=DeliveryRecord,
            task_ids={deliveries[i].task_id for i in deliveries if deliveries[i].pk in failed_ids},
        )
    return {"received": len(events), "matched": len(events) - len(unknown), "unknown": unknown}
