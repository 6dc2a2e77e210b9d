"""Preferences (opt-outs per category and/or channel) and the signed one-click
unsubscribe link that email carries (RFC 8058)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse

from channels_app.models import DeliveryRecord, Interaction, InteractionKind

from .models import Preference, Recipient

TOKEN_SALT = "msgcenter.unsubscribe"
# Categories whose messages carry no unsubscribe link and ignore opt-outs.
TRANSACTIONAL = ("verification",)


def opt_outs(recipient: Recipient) -> list[dict[str, str]]:
    rows = (
        Preference.objects.filter(recipient=recipient, opted_out=True)
        .order_by("category", "channel")
        .values("category", "channel", "updated_at")
    )
    return [
        {
            "category": r["category"],
            "channel": r["channel"],
            "updated_at": r["updated_at"].isoformat(),
        }
        for r in rows
    ]


def set_opt_outs(*, recipient: Recipient, items: list[dict[str, str]]) -> list[dict[str, str]]:
    """Replace the recipient's opt-outs with `items` ({"category", "channel"}; "" = all)."""
    wanted = {(i.get("category") or "", i.get("channel") or "") for i in items}
    with transaction.atomic():
        Recipient.objects.select_for_update().filter(pk=recipient.pk).first()
        existing = {
            (p.category, p.channel): p for p in Preference.objects.filter(recipient=recipient)
        }
        stale = [p.pk for key, p in existing.items() if key not in wanted or not p.opted_out]
        Preference.objects.filter(pk__in=stale).delete()
        Preference.objects.bulk_create(
            [
                Preference(recipient=recipient, category=c, channel=ch, opted_out=True)
                for c, ch in sorted(wanted)
                if (c, ch) not in existing or not existing[(c, ch)].opted_out
            ]
        )
    return opt_outs(recipient)


def opt_out(*, recipient_id: int, category: str = "", channel: str = "") -> Preference:
    pref, _ = Preference.objects.update_or_create(
        recipient_id=recipient_id, category=category, channel=channel, defaults={"opted_out": True}
    )
    return pref


# --- the signed link -------------------------------------------------------------------


def make_token(*, delivery_id: int, recipient_id: int, category: str, channel: str) -> str:
    return signing.dumps(
        [delivery_id, recipient_id, category, channel], salt=TOKEN_SALT, compress=True
    )


def read_token(token: str) -> dict[str, Any] | None:
    try:
        delivery_id, recipient_id, category, channel = signing.loads(token, salt=TOKEN_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    return {
        "delivery_id": delivery_id,
        "recipient_id": recipient_id,
        "category": category,
        "channel": channel,
    }


def unsubscribe_url(*, delivery_id: int, recipient_id: int, category: str, channel: str) -> str:
    token = make_token(
        delivery_id=delivery_id, recipient_id=recipient_id, category=category, channel=channel
    )
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse("unsubscribe", args=[token])


def list_unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 + RFC 8058 one-click headers."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def unsubscribe(*, token_data: dict[str, Any], source: str = "link") -> bool:
    """Opt the link's recipient out of the link's category on its channel, and record an
    `unsubscribed` interaction on the delivery (once). False if the recipient is gone."""
    recipient_id = token_data["recipient_id"]
    with transaction.atomic():
        if not Recipient.objects.filter(pk=recipient_id).exists():
            return False
        opt_out(
            recipient_id=recipient_id,
            category=token_data["category"],
            channel=token_data["channel"],
        )
        delivery = DeliveryRecord.objects.filter(
            pk=token_data["delivery_id"], recipient_id=recipient_id
        ).first()
        if (
            delivery is not None
            and not Interaction.objects.filter(
                delivery=delivery, kind=InteractionKind.UNSUBSCRIBED
            ).exists()
        ):
            Interaction.objects.create(
                delivery=delivery,
                kind=InteractionKind.UNSUBSCRIBED,
                payload={
                    "source": source,
                    "category": token_data["category"],
                    "channel": token_data["channel"],
                },
            )
    return True
