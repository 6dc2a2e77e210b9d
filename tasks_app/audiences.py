"""Audiences: `"recipients": {"tag": "vip"}` or `{"all": true}` instead of a list.

The API only creates the task (`tasked`, no deliveries yet) and hands it to a worker,
which streams recipient ids by keyset pagination (`id > cursor ORDER BY id LIMIT n`)
and writes the deliveries one chunk per transaction, so 100,000+ recipients never sit
in memory at once. The cursor is saved with each chunk: a fan-out interrupted by a
dying worker resumes where it stopped. The task stays `tasked` until the fan-out is
complete, then it is planned (or `scheduled` when `send_at` is ahead)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from channels_app.models import DeliveryRecord
from channels_app.routing import is_group_channel
from msgcenter.errors import InvalidParams, InvalidRequest
from templates_app.models import TemplateVersion
from templates_app.rendering import validate_params

from .models import ApiClient, MessageTask, Recipient, TaskState

logger = logging.getLogger("msgcenter.audiences")


def parse_audience(raw: Any) -> dict[str, Any]:
    """`{"tag": "<tag>"}` or `{"all": true}`, else 400."""
    if isinstance(raw, dict) and set(raw) == {"tag"}:
        tag = raw["tag"]
        if not isinstance(tag, str) or not tag.strip() or len(tag) > 100:
            raise InvalidRequest(
                "'recipients.tag' must be a non-empty string (at most 100 characters).",
                details={"field": "recipients.tag"},
            )
        return {"tag": tag.strip()}
    if isinstance(raw, dict) and set(raw) == {"all"}:
        if raw["all"] is not True:
            raise InvalidRequest(
                "'recipients.all' must be true.", details={"field": "recipients.all"}
            )
        return {"all": True}
    raise InvalidRequest(
        '\'recipients\' must be a list of external ids or objects, {"tag": "..."} or '
        '{"all": true}.',
        details={"field": "recipients"},
    )


def check_params(version: TemplateVersion, params: dict[str, Any]) -> None:
    errors = validate_params(version.params_schema or {}, params)
    if errors:
        first = errors[0]
        raise InvalidParams(
            f"Params do not match the template's schema at '{first.path}': {first.message}",
            details={"errors": [e.as_dict() for e in errors[:100]]},
        )


def create_audience_task(
    *,
    client: ApiClient | None,
    version: TemplateVersion,
    audience: Any,
    params: dict[str, Any],
    channels: list[str],
    send_at: datetime | None,
    priority: str,
    idempotency_key: str | None,
    fingerprint: str,
    by: str,
) -> MessageTask:
    """Create the task of an audience send; the fan-out job starts on commit."""
    from .tasks import fan_out_job

    spec = parse_audience(audience)
    check_params(version, params)
    with transaction.atomic():
        task = MessageTask.objects.create(
            template=version.template,
            template_version=version,
            client=client,
            params=params,
            channels=channels,
            audience={**spec, "cursor": 0, "done": False},
            priority=priority,
            send_at=send_at,
            idempotency_key=idempotency_key or None,
            request_hash=fingerprint,
            created_by=by or (client.name if client else ""),
        )
        task.standardize(by=task.created_by, note=f"audience {_describe(spec)}: fan-out")
        task.save(update_fields=["state"])
        transaction.on_commit(
            lambda: fan_out_job.apply_async(args=[str(task.pk)], queue="dispatch")
        )
    return task


def _describe(spec: dict[str, Any]) -> str:
    return f"tag '{spec['tag']}'" if "tag" in spec else "all recipients"


def _json_contains_supported() -> bool:
    return connection.vendor == "postgresql"


def audience_chunk(
    spec: dict[str, Any], cursor: int, size: int
) -> tuple[list[Recipient], int, bool]:
    """The next recipients after `cursor` (by id): (recipients, new cursor, finished)."""
    qs = Recipient.objects.filter(id__gt=cursor).order_by("id")
    tag = spec.get("tag")
    if tag is None or _json_contains_supported():
        if tag is not None:
            qs = qs.filter(tags__contains=[tag])  # jsonb @>, served by the GIN index
        rows = list(qs[:size])
        new_cursor = rows[-1].pk if rows else cursor
        return rows, new_cursor, len(rows) < size
    # SQLite (the quick start) has no JSON containment: filter each scanned chunk here.
    scanned = list(qs[:size])
    rows = [r for r in scanned if tag in (r.tags or [])]
    new_cursor = scanned[-1].pk if scanned else cursor
    return rows, new_cursor, len(scanned) < size


def _split_channels(version: TemplateVersion, channels: list[str]) -> tuple[list, list]:
    person, group = [], []
    for channel in channels:
        pinned = (version.content_for(channel) or {}).get("account")
        (group if is_group_channel(channel, pinned) else person).append(channel)
    return person, group


def fan_out(
    task_id: str, *, chunk: int | None = None, max_chunks: int | None = None
) -> dict[str, int]:
    """Create the deliveries of an audience task chunk by chunk, then plan it. With
    `max_chunks`, stop after that many (a later call resumes from the saved cursor)."""
    from .services import MAX_MENTIONS, _build_deliveries
    from .tasks import plan_task_job

    size = chunk or settings.MSGCENTER["FAN_OUT_CHUNK"]
    chunks = 0
    while max_chunks is None or chunks < max_chunks:
        with transaction.atomic():
            task = (
                MessageTask.objects.select_for_update(of=("self",))
                .select_related("template", "template_version")
                .filter(pk=task_id)
                .first()
            )
            if (
                task is None
                or task.state != TaskState.TASKED
                or not task.audience
                or task.audience.get("done", True)
            ):
                return {"chunks": chunks}
            version = task.template_version
            person, group = _split_channels(version, task.channels)
            spec = task.audience
            now = timezone.now()
            recipients, cursor, finished = audience_chunk(spec, spec.get("cursor", 0), size)
            rows = _build_deliveries(task, version, person, recipients, now) if person else []
            if finished and group:
                first, _, _ = audience_chunk(spec, 0, MAX_MENTIONS)
                rows += _build_deliveries(task, version, group, first, now)
            DeliveryRecord.objects.bulk_create(rows, batch_size=2000)
            task.recipient_count += len(recipients)
            task.delivery_count += len(rows)
            task.audience = {**spec, "cursor": cursor, "done": finished}
            chunks += 1
            fields = ["audience", "recipient_count", "delivery_count"]
            if finished:
                note = f"fan-out done: {task.recipient_count} recipients"
                if task.send_at and task.send_at > now:
                    task.schedule(by="fan-out", note=f"{note}; send at {task.send_at.isoformat()}")
                    fields.append("state")
                else:
                    transaction.on_commit(
                        lambda pk=str(task.pk): plan_task_job.apply_async(
                            args=[pk], queue="dispatch"
                        )
                    )
            task.save(update_fields=fields)
        if finished:
            logger.info("fan-out of %s: %d chunks", task_id, chunks)
            return {
                "chunks": chunks,
                "recipients": task.recipient_count,
                "deliveries": task.delivery_count,
            }
    return {"chunks": chunks}
