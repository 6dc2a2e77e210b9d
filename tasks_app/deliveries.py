"""Building delivery rows for a task: one per person on a person channel (skipped with
`no_address` when the person has no address there), one per task on a group channel,
mentioning its people. Used by sends, audiences and fallbacks alike."""

from __future__ import annotations

from typing import Any

from channels_app.channels.registry import ChannelKind
from channels_app.models import DeliveryRecord, DeliveryState, SkipReason


def mention(recipient: Any, channel_kind: ChannelKind) -> dict[str, Any]:
    return {
        "external_id": recipient.external_id,
        "name": recipient.name,
        "phone": recipient.phone,
        "address": channel_kind.address_for(recipient),
    }


def person_delivery(*, recipient: Any, channel_kind: ChannelKind, **fields: Any) -> DeliveryRecord:
    """The recipient's delivery on a person channel, or a `no_address` skip."""
    address = channel_kind.address_for(recipient)
    if address:
        return DeliveryRecord(
            recipient=recipient, channel=channel_kind.kind, address=address, **fields
        )
    fields.pop("account_id", None)
    return DeliveryRecord(
        recipient=recipient,
        channel=channel_kind.kind,
        state=DeliveryState.SKIPPED,
        reason=SkipReason.NO_ADDRESS,
        **fields,
    )


def group_delivery(
    *, recipients: list[Any], channel_kind: ChannelKind, **fields: Any
) -> DeliveryRecord:
    """The task's one post on a group channel, mentioning `recipients`."""
    return DeliveryRecord(
        recipient=None,
        channel=channel_kind.kind,
        mentions=[mention(r, channel_kind) for r in recipients],
        **fields,
    )
