"""Business actions of tasks_app: API keys, recipients, messages."""

from __future__ import annotations

import hashlib
import json
import operator
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django_fsm import can_proceed

from channels_app.channels import CHANNELS, get_channel
from channels_app.models import (
    POLICY_SKIP_REASONS,
    DeliveryRecord,
    DeliveryState,
    Interaction,
    InteractionKind,
    SkipReason,
)
from channels_app.routing import is_group_channel
from channels_app.transitions import bulk_transition
from msgcenter.errors import APIError, InvalidParams, InvalidRequest, NotFound
from msgcenter.lifecycle import lock_for_transition
from templates_app.models import TemplateVersion
from templates_app.rendering import validate_params
from templates_app.services import published_version

from .deliveries import group_delivery, person_delivery
from .models import SCOPES, ApiClient, ApiKey, MessageTask, Recipient, TaskState

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
            name=client_name, defaults={"scopes": scopes}
        )
        if not created and sorted(client.scopes) != sorted(scopes):
            client.scopes = scopes
            client.save(update_fields=["scopes"])
        return ApiKey.generate(client)


def upsert_recipient(*, external_id: str, **fields: Any) -> tuple[Recipient, bool]:
    values = {k: v for k, v in fields.items() if k in RECIPIENT_FIELDS and v is not None}
    recipient, created = Recipient.objects.update_or_create(
        external_id=external_id, defaults=values
    )
    return recipient, created


# --- messages ------------------------------------------------------------------------

LOOKUP_CHUNK = 2000
MAX_MENTIONS = 1000


@dataclass
class RecipientSpec:
    """One recipient as given in a request: an id, maybe fields to upsert and own params."""

    external_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] | None = None


def request_fingerprint(body: dict[str, Any]) -> str:
    body = {k: v for k, v in body.items() if k != "idempotency_key"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def parse_recipients(raw: Any) -> list[RecipientSpec]:
    """Validate the `recipients` field: a list of external ids and/or objects."""
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest(
            "'recipients' must be a non-empty list of external ids or objects.",
            details={"field": "recipients"},
        )
    limit = settings.MSGCENTER["MAX_RECIPIENTS_PER_REQUEST"]
    if len(raw) > limit:
        raise InvalidRequest(
            f"Too many recipients: {len(raw)} given, at most {limit} per request. "
            "Split the audience over several requests.",
            details={"field": "recipients", "max": limit, "given": len(raw)},
        )
    specs: dict[str, RecipientSpec] = {}
    for index, item in enumerate(raw):
        if isinstance(item, str) and item.strip():
            specs.setdefault(item.strip(), RecipientSpec(item.strip()))
        elif isinstance(item, dict):
            ext = item.get("external_id")
            if not isinstance(ext, str) or not ext.strip():
                raise InvalidRequest(
                    f"recipients[{index}]: 'external_id' is required.",
                    details={"field": f"recipients[{index}].external_id"},
                )
            params = item.get("params")
            if params is not None and not isinstance(params, dict):
                raise InvalidRequest(
                    f"recipients[{index}].params must be an object.",
                    details={"field": f"recipients[{index}].params"},
                )
            fields = {k: item[k] for k in RECIPIENT_FIELDS if k in item and item[k] is not None}
            _check_recipient_fields(fields, f"recipients[{index}]")
            specs[ext.strip()] = RecipientSpec(ext.strip(), fields, params)
        else:
            raise InvalidRequest(
                f"recipients[{index}] must be an external id or an object.",
                details={"field": f"recipients[{index}]"},
            )
    return list(specs.values())


def _check_recipient_fields(fields: dict[str, Any], where: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    for key in ("name", "email", "phone", "locale", "timezone"):
        if key in fields and not isinstance(fields[key], str):
            raise InvalidRequest(
                f"{where}.{key} must be a string.", details={"field": f"{where}.{key}"}
            )
    if fields.get("timezone"):
        try:
            ZoneInfo(fields["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidRequest(
                f"{where}.timezone: unknown time zone '{fields['timezone']}'.",
                details={"field": f"{where}.timezone"},
            )
    if "addresses" in fields and not isinstance(fields["addresses"], dict):
        raise InvalidRequest(
            f"{where}.addresses must be an object.", details={"field": f"{where}.addresses"}
        )
    if "tags" in fields and not isinstance(fields["tags"], list):
        raise InvalidRequest(f"{where}.tags must be a list.", details={"field": f"{where}.tags"})


def _upsert_many(specs: list[RecipientSpec]) -> None:
    """Bulk upsert of the object recipients: one statement per distinct field set."""
    groups: dict[tuple[str, ...], list[RecipientSpec]] = {}
    for spec in specs:
        if spec.fields:
            groups.setdefault(tuple(sorted(spec.fields)), []).append(spec)
    for keys, group in groups.items():
        for start in range(0, len(group), LOOKUP_CHUNK):
            Recipient.objects.bulk_create(
                [
                    Recipient(external_id=s.external_id, **s.fields)
                    for s in group[start : start + LOOKUP_CHUNK]
                ],
                update_conflicts=True,
                unique_fields=["external_id"],
                update_fields=[*keys, "updated_at"],
            )


def _load_recipients(external_ids: list[str]) -> dict[str, Recipient]:
    found: dict[str, Recipient] = {}
    for start in range(0, len(external_ids), LOOKUP_CHUNK):
        chunk = external_ids[start : start + LOOKUP_CHUNK]
        for r in Recipient.objects.filter(external_id__in=chunk):
            found[r.external_id] = r
    return found


def _check_channels(version: TemplateVersion, channels: Any) -> list[str]:
    available = version.channels
    if channels is None:
        return available
    if (
        not isinstance(channels, list)
        or not channels
        or not all(isinstance(c, str) for c in channels)
    ):
        raise InvalidRequest(
            "'channels' must be a non-empty list of channel names.", details={"field": "channels"}
        )
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise InvalidRequest(
            f"Unknown channel(s): {', '.join(unknown)}.",
            details={"field": "channels", "unknown": unknown, "known": sorted(CHANNELS)},
        )
    missing = [c for c in channels if c not in available]
    if missing:
        raise InvalidRequest(
            f"Template '{version.template.code}' has no content for: {', '.join(missing)}.",
            details={"field": "channels", "missing": missing, "available": available},
        )
    return list(dict.fromkeys(channels))


def _validate_all_params(
    version: TemplateVersion, params: dict[str, Any], specs: list[RecipientSpec]
) -> None:
    schema = version.params_schema or {}
    errors: list[dict[str, str]] = []
    shared_errors = None
    for spec in specs:
        if spec.params:
            merged = {**params, **spec.params}
            found = validate_params(schema, merged)
        else:
            if shared_errors is None:
                shared_errors = validate_params(schema, params)
            found = shared_errors
        for e in found:
            errors.append({"recipient": spec.external_id, **e.as_dict()})
            if len(errors) >= 100:
                break
        if len(errors) >= 100:
            break
    if errors:
        first = errors[0]
        raise InvalidParams(
            f"Params do not match the template's schema for recipient '{first['recipient']}'"
            f" at '{first['path']}': {first['message']}",
            details={"errors": errors},
        )


def _existing_for_key(client: ApiClient | None, key: str, fingerprint: str) -> MessageTask | None:
    existing = MessageTask.objects.filter(client=client, idempotency_key=key).first()
    if existing is None:
        return None
    ttl = timedelta(hours=settings.MSGCENTER["IDEMPOTENCY_TTL_HOURS"])
    if existing.created_at < timezone.now() - ttl:
        # Expired: release the key so it can name a new message.
        MessageTask.objects.filter(pk=existing.pk).update(idempotency_key=None)
        return None
    if existing.request_hash != fingerprint:
        raise APIError(
            "This idempotency key was used with a different request body.",
            code="idempotency_conflict",
            status_code=409,
            details={"idempotency_key": key, "task": str(existing.pk)},
        )
    return existing


def send_message(
    *,
    client: ApiClient | None,
    template: str,
    recipients: Any,
    params: dict[str, Any] | None = None,
    channels: list[str] | None = None,
    send_at: datetime | None = None,
    priority: str = "normal",
    idempotency_key: str | None = None,
    fingerprint: str = "",
    by: str = "",
) -> tuple[MessageTask, bool]:
    """Create a task and its deliveries in one transaction; planning starts on commit.

    Returns (task, created). A repeat with the same idempotency key and body returns the
    first task with created=False."""
    from .tasks import plan_task_job

    params = params or {}
    if not isinstance(params, dict):
        raise InvalidRequest("'params' must be an object.", details={"field": "params"})
    if idempotency_key:
        existing = _existing_for_key(client, idempotency_key, fingerprint)
        if existing is not None:
            return existing, False
    version = published_version(template)
    channel_list = _check_channels(version, channels)
    if isinstance(recipients, dict):
        # An audience ({"tag": ...} / {"all": true}): a worker fans it out in chunks.
        from .audiences import create_audience_task

        return create_audience_task(
            client=client,
            version=version,
            audience=recipients,
            params=params,
            channels=channel_list,
            send_at=send_at,
            priority=priority,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            by=by,
        ), True
    specs = parse_recipients(recipients)
    _validate_all_params(version, params, specs)
    ids = [s.external_id for s in specs]

    with transaction.atomic():
        _upsert_many(specs)
        found = _load_recipients(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(
                f"Unknown recipient(s): {', '.join(missing[:20])}"
                f"{' …' if len(missing) > 20 else ''}.",
                details={"recipients": missing[:1000]},
            )
        now = timezone.now()
        task = MessageTask.objects.create(
            template=version.template,
            template_version=version,
            client=client,
            params=params,
            recipient_params={s.external_id: s.params for s in specs if s.params},
            channels=channel_list,
            priority=priority,
            send_at=send_at,
            idempotency_key=idempotency_key or None,
            request_hash=fingerprint,
            recipient_count=len(specs),
            created_by=by or (client.name if client else ""),
            created_at=now,
        )
        deliveries = _build_deliveries(task, version, channel_list, [found[i] for i in ids], now)
        _insert_deliveries(deliveries)
        task.delivery_count = len(deliveries)
        task.standardize(by=task.created_by, note=f"{len(deliveries)} deliveries")
        if send_at and send_at > now:
            task.schedule(by=task.created_by, note=f"send at {send_at.isoformat()}")
        task.save(update_fields=["state", "delivery_count"])
        if task.state == TaskState.TASKED:
            transaction.on_commit(
                lambda: plan_task_job.apply_async(args=[str(task.pk)], queue="dispatch")
            )
    return task, True


COPY_THRESHOLD = 1000


def _insert_deliveries(rows: list[DeliveryRecord]) -> None:
    """Insert new delivery rows. A large audience goes through PostgreSQL's COPY, which
    skips building an INSERT of thousands of VALUES tuples (the bulk of a big request's
    time); small ones and other databases use bulk_create."""
    connection = connections[DeliveryRecord.objects.db]
    if connection.vendor != "postgresql" or len(rows) < COPY_THRESHOLD:
        DeliveryRecord.objects.bulk_create(rows, batch_size=2000)
        return
    fields = [f for f in DeliveryRecord._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    convert = [_db_value(f, connection) for f in fields]
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {DeliveryRecord._meta.db_table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([conv(row) for conv in convert])


def _db_value(field: Any, connection: Any):
    """row -> the field's database value. Most columns repeat a few values over a large
    audience (None, the task, `now`, empty JSON): those are converted once."""
    get = operator.attrgetter(field.attname)
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):

        def get(row, get=get):
            field.pre_save(row, True)
            return get(row)

    cache: dict[Any, Any] = {}

    def convert(row: Any) -> Any:
        value = get(row)
        if value is None:
            return None
        key = (
            (type(value), value)
            if isinstance(value, str | int | datetime | uuid.UUID)
            else (type(value), "empty")
            if value in ([], {})
            else None
        )
        if key is None:
            return field.get_db_prep_save(value, connection)
        if key not in cache:
            cache[key] = field.get_db_prep_save(value, connection)
        return cache[key]

    return convert


def _build_deliveries(
    task: MessageTask,
    version: TemplateVersion,
    channels: list[str],
    recipients: list[Recipient],
    now: datetime,
) -> list[DeliveryRecord]:
    rows: list[DeliveryRecord] = []
    for channel in channels:
        kind = get_channel(channel)
        pinned = (version.content_for(channel) or {}).get("account")
        fields = {"task": task, "account_id": pinned, "created_at": now}
        if is_group_channel(channel, pinned):
            rows.append(
                group_delivery(recipients=recipients[:MAX_MENTIONS], channel_kind=kind, **fields)
            )
        else:
            rows += [person_delivery(recipient=r, channel_kind=kind, **fields) for r in recipients]
    return rows


def get_task(task_id: Any) -> MessageTask:
    try:
        uuid.UUID(str(task_id))
    except ValueError:
        raise NotFound(f"Task '{task_id}' does not exist.", details={"task": str(task_id)})
    task = (
        MessageTask.objects.select_related("template", "template_version")
        .filter(pk=task_id)
        .first()
    )
    if task is None:
        raise NotFound(f"Task '{task_id}' does not exist.", details={"task": str(task_id)})
    return task


def cancel_task(*, task: MessageTask, by: str = "", note: str = "") -> MessageTask:
    """Cancel a task that is not terminal; its unsent deliveries become skipped/cancelled.
    Deliveries already being sent finish normally."""
    with transaction.atomic():
        task = lock_for_transition(task, "cancel", noun="task", done="cancelled")
        task.cancel(by=by, note=note)
        task.finished_at = timezone.now()
        task.save(update_fields=["state", "finished_at"])
        bulk_transition(
            DeliveryRecord.objects.filter(task=task),
            DeliveryRecord.skip,
            reason=SkipReason.CANCELLED,
        )
    return task


def recall_task(*, task: MessageTask, by: str = "") -> dict[str, Any]:
    """Recall a message: unsent deliveries are skipped (reason `recalled`), in-app
    messages leave their inboxes (a `recalled` interaction each; read reminders are then
    not sent), and what already went out on other channels is reported, not undone.
    A task still running is cancelled. Repeating a recall changes nothing."""
    now = timezone.now()
    gone = [DeliveryState.SENT, DeliveryState.DELIVERED]
    with transaction.atomic():
        task = MessageTask.objects.select_for_update().get(pk=task.pk)
        deliveries = DeliveryRecord.objects.filter(task=task)
        skipped = bulk_transition(deliveries, DeliveryRecord.skip, reason=SkipReason.RECALLED)
        # In-app rows still being written are hidden too: the inbox shows no recalled row.
        inapp = list(
            deliveries.filter(
                channel="inapp", recalled_at__isnull=True, state__in=[*gone, DeliveryState.SENDING]
            ).values_list("id", flat=True)
        )
        if inapp:
            DeliveryRecord.objects.filter(id__in=inapp).update(recalled_at=now)
            Interaction.objects.bulk_create(
                [
                    Interaction(
                        delivery_id=i,
                        kind=InteractionKind.RECALLED,
                        created_at=now,
                        payload={"by": by},
                    )
                    for i in inapp
                ],
                batch_size=1000,
            )
        not_recalled = [
            {
                "channel": row["channel"],
                "state": row["state"],
                "count": row["n"],
                "reason": (
                    "already sent: this channel cannot take a message back"
                    if row["state"] in gone
                    else "being sent right now"
                ),
            }
            for row in (
                deliveries.exclude(channel="inapp")
                .filter(state__in=[*gone, DeliveryState.SENDING])
                .order_by()
                .values("channel", "state")
                .annotate(n=Count("id"))
                .order_by("channel", "state")
            )
        ]
        if can_proceed(task.cancel):
            task.cancel(by=by, note="recalled")
            task.finished_at = now
            task.save(update_fields=["state", "finished_at"])
    return {
        "id": str(task.pk),
        "state": task.state,
        "recalled": len(inapp),
        "skipped": skipped,
        "not_recalled": not_recalled,
    }


def finish_task_if_done(task_id: Any) -> MessageTask | None:
    """Move a `pushing` task to completed/failed once every delivery is terminal.

    Race-free: the task row is locked, and whoever commits the last delivery result
    checks after its own commit, so exactly one caller sees 'all terminal' while the
    task is still `pushing`."""
    with transaction.atomic():
        task = MessageTask.objects.select_for_update().filter(pk=task_id).first()
        if task is None or task.state != TaskState.PUSHING:
            return None
        deliveries = DeliveryRecord.objects.filter(task_id=task_id)
        if deliveries.open().exists():
            return None
        succeeded = deliveries.filter(
            Q(state__in=[DeliveryState.SENT, DeliveryState.DELIVERED])
            | Q(state=DeliveryState.SKIPPED, reason__in=POLICY_SKIP_REASONS)
        ).exists()
        if succeeded:
            task.complete(by="pipeline")
        else:
            task.fail(by="pipeline", note="no delivery succeeded")
        task.finished_at = timezone.now()
        task.save(update_fields=["state", "finished_at"])
        return task


def finish_tasks_if_done(task_ids: Iterable[Any]) -> list[MessageTask]:
    """`finish_task_if_done` for many tasks at once: a chunk of one-delivery tasks (group
    channels post once per task) finishes hundreds of them, checked here with a few
    queries for the lot instead of a few per task. Same guarantees: the tasks are locked
    (in key order, so two workers never deadlock) before their deliveries are counted."""
    ids = sorted({str(task_id) for task_id in task_ids})
    if len(ids) <= 1:
        return [task for task in map(finish_task_if_done, ids) if task is not None]
    finished = []
    with transaction.atomic():
        tasks = list(
            MessageTask.objects.select_for_update()
            .filter(pk__in=ids, state=TaskState.PUSHING)
            .order_by("pk")
        )
        if not tasks:
            return []
        deliveries = DeliveryRecord.objects.filter(task_id__in=[t.pk for t in tasks]).order_by()
        still_open = set(deliveries.open().values_list("task_id", flat=True).distinct())
        succeeded = set(
            deliveries.filter(
                Q(state__in=[DeliveryState.SENT, DeliveryState.DELIVERED])
                | Q(state=DeliveryState.SKIPPED, reason__in=POLICY_SKIP_REASONS)
            )
            .values_list("task_id", flat=True)
            .distinct()
        )
        now = timezone.now()
        for task in tasks:
            if task.pk in still_open:
                continue
            if task.pk in succeeded:
                task.complete(by="pipeline")
            else:
                task.fail(by="pipeline", note="no delivery succeeded")
            task.finished_at = now
            finished.append(task)
        # The transitions ran (and wrote their events); one UPDATE per outcome saves them.
        for state in {t.state for t in finished}:
            MessageTask.objects.filter(pk__in=[t.pk for t in finished if t.state == state]).update(
                state=state, finished_at=now
            )
    return finished


def delivery_counts(task: MessageTask) -> dict[str, int]:
    counts = dict.fromkeys(DeliveryState.values, 0)
    for row in (
        DeliveryRecord.objects.filter(task=task).order_by().values("state").annotate(n=Count("id"))
    ):
        counts[row["state"]] = row["n"]
    return counts


# --- inbox ---------------------------------------------------------------------------


def get_recipient(external_id: str) -> Recipient:
    try:
        return Recipient.objects.get(external_id=external_id)
    except Recipient.DoesNotExist:
        raise NotFound(
            f"Recipient '{external_id}' does not exist.", details={"recipient": external_id}
        )


def inbox_queryset(recipient: Recipient, *, unread: bool = False):
    qs = DeliveryRecord.objects.filter(
        recipient=recipient,
        channel="inapp",
        state__in=[DeliveryState.SENT, DeliveryState.DELIVERED],
        recalled_at__isnull=True,
    )
    if unread:
        qs = qs.filter(read_at__isnull=True)
    return qs


def mark_read(*, recipient: Recipient, delivery_id: Any) -> DeliveryRecord:
    """Mark one inbox item read (idempotent: a second call changes nothing)."""
    try:
        delivery_id = int(delivery_id)
    except (TypeError, ValueError):
        raise NotFound(f"Inbox item '{delivery_id}' does not exist.")
    with transaction.atomic():
        item = inbox_queryset(recipient).select_for_update().filter(pk=delivery_id).first()
        if item is None:
            raise NotFound(
                f"Inbox item '{delivery_id}' does not exist for '{recipient}'.",
                details={"delivery": str(delivery_id)},
            )
        if item.read_at is None:
            item.read_at = timezone.now()
            DeliveryRecord.objects.filter(pk=item.pk).update(read_at=item.read_at)
            Interaction.objects.create(
                delivery=item, kind=InteractionKind.READ, created_at=item.read_at
            )
    return item


def mark_all_read(*, recipient: Recipient) -> int:
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            inbox_queryset(recipient, unread=True).select_for_update().values_list("id", flat=True)
        )
        if not ids:
            return 0
        DeliveryRecord.objects.filter(id__in=ids, read_at__isnull=True).update(read_at=now)
        Interaction.objects.bulk_create(
            [Interaction(delivery_id=i, kind=InteractionKind.READ, created_at=now) for i in ids],
            batch_size=1000,
        )
    return len(ids)
