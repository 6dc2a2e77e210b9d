"""Business actions of tasks_app: API keys, recipients, messages."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from .models import SCOPES, ApiClient, ApiKey, Recipient

RECIPIENT_FIELDS = ("name", "email", "phone", "locale", "timezone", "addresses", "tags")


def create_api_key(*, client_name: str, scopes: list[str] | None = None) -> tuple[ApiKey, str]:
    """Create (or reuse) the client and give it a new key. Returns the key and its raw
    value, which is shown once and never stored."""
    scopes = list(scopes or SCOPES)
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        client, created = ApiClient.objects.get_or_create(
            name=client_name, defaults={"scopes": scopes})
        if not created and sorted(client.scopes) != sorted(scopes):
            client.scopes = scopes
            client.save(update_fields=["scopes"])
        return ApiKey.generate(client)


def upsert_recipient(*, external_id: str, **fields: Any) -> tuple[Recipient, bool]:
    values = {k: v for k, v in fields.items() if k in RECIPIENT_FIELDS and v is not None}
    recipient, created = Recipient.objects.update_or_create(
        external_id=external_id, defaults=values)
    return recipient, created
