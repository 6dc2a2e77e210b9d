"""The send journal: one note per message, written to Redis the moment a provider
accepted it, before the chunk's results reach the database.

A chunk re-claimed after its worker died (see tasks_app.scheduler.sweep_stuck) reads
the journal and records the messages found there as sent instead of sending them again.
What can still go out twice shrinks from a whole chunk to the instant between the
provider's answer and one Redis SET."""

from __future__ import annotations

from collections.abc import Iterable

from msgcenter import kv

from .channels import SendResult

TTL_SECONDS = 2 * 24 * 3600


def _key(delivery_id: int) -> str:
    return f"journal:sent:{delivery_id}"


def record(result: SendResult) -> None:
    kv.set_many({_key(result.delivery_id): result.provider_message_id or "-"}, TTL_SECONDS)


def already_sent(delivery_ids: Iterable[int]) -> dict[int, str]:
    """Delivery id -> provider message id, for the ids the journal knows were sent."""
    ids = list(delivery_ids)
    found = kv.get_many(_key(i) for i in ids)
    out = {}
    for i in ids:
        value = found.get(_key(i))
        if value is not None:
            out[i] = "" if value == "-" else value
    return out
