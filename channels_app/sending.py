"""Sending a chunk of deliveries: claim, send through the routed provider(s), write the
results back in bulk.

Claiming is a conditional update of rows locked with SKIP LOCKED: a chunk delivered
twice, or to two workers at once, is sent once. A delivery already `sent` is never
sent again (the database row is the outbox)."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import journal, ratelimit, tracking
from .channels import OutboundMessage, SendResult, get_channel
from .models import DeliveryRecord, DeliveryState
from .routing import Route, record_failure, record_success, routes_for
from .signals import deliveries_failed, deliveries_finished, deliveries_sent
from .transitions import bulk_transition, transition_sources, transition_target

logger = logging.getLogger("msgcenter.sending")


def _conf(key: str) -> Any:
    return settings.MSGCENTER[key]


def max_attempts(channel: str) -> int:
    """Attempts before a transiently failing delivery is given up: settings override
    per channel, else the channel kind's own limit."""
    overrides = _conf("MAX_ATTEMPTS")
    if channel in overrides:
        return overrides[channel]
    kind = get_channel(channel)
    return kind.max_attempts if kind else overrides.get("default", 5)


def backoff_seconds(attempts: int, *, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter between 50% and 100% of the step."""
    rng = rng or random
    base, cap = _conf("RETRY_BASE_SECONDS"), _conf("RETRY_MAX_SECONDS")
    step = min(cap, base * (2 ** max(0, attempts - 1)))
    return step * rng.uniform(0.5, 1.0)


def claim(ids: Iterable[int]) -> list[int]:
    """Move the `queued` rows among `ids` that are due to `sending`; return their ids."""
    now = timezone.now()
    lease = now + timedelta(seconds=_conf("SEND_LEASE_SECONDS"))
    with transaction.atomic():
        due = Q(not_before__isnull=True) | Q(not_before__lte=now + timedelta(seconds=1))
        claimed = list(
            DeliveryRecord.objects.select_for_update(skip_locked=True)
            .filter(id__in=list(ids), state=DeliveryState.QUEUED)
            .filter(due)
            .values_list("id", flat=True)
        )
        if claimed:
            bulk_transition(
                DeliveryRecord.objects.filter(id__in=claimed),
                DeliveryRecord.claim,
                attempts=F("attempts") + 1,
                lease_until=lease,
            )
    return claimed


def _message(d: DeliveryRecord) -> OutboundMessage:
    content = d.content or {}
    recipient = d.recipient
    body, body_html = content.get("body", ""), content.get("body_html", "")
    if (content.get("extra") or {}).get("track_clicks"):
        body, body_html = tracking.wrap_text(body, d.pk), tracking.wrap_html(body_html, d.pk)
    return OutboundMessage(
        delivery_id=d.pk,
        address=d.address,
        subject=content.get("subject", ""),
        body=body,
        body_html=body_html,
        extra=content.get("extra") or {},
        mentions=d.mentions or [],
        recipient={
            "external_id": recipient.external_id,
            "name": recipient.name,
            "email": recipient.email,
            "phone": recipient.phone,
            "locale": recipient.locale,
        }
        if recipient
        else {},
        task_id=str(d.task_id),
        template=content.get("template", ""),
        category=content.get("category", ""),
        headers=content.get("headers") or {},
    )


def send_chunk(channel: str, ids: list[int]) -> dict[str, int]:
    """Claim, send and record one chunk. Returns counts per outcome (for logs/tests)."""
    claimed = claim(ids)
    if not claimed:
        return {"claimed": 0}
    deliveries = list(
        DeliveryRecord.objects.filter(id__in=claimed).select_related("recipient").order_by("id")
    )
    results: dict[int, tuple[SendResult, Route | None]] = {}
    to_send: dict[int | None, list[DeliveryRecord]] = defaultdict(list)
    # Rows claimed before (their worker died mid-chunk): what the journal says went out
    # is recorded as sent, not sent again.
    journaled = journal.already_sent(d.pk for d in deliveries if d.attempts > 1)
    for d in deliveries:
        if d.pk in journaled:
            results[d.pk] = (SendResult(d.pk, ok=True, provider_message_id=journaled[d.pk]), None)
        elif (d.content or {}).get("render_error"):
            results[d.pk] = (
                SendResult(
                    d.pk,
                    ok=False,
                    permanent=True,
                    error=f"render error: {d.content['render_error']}",
                ),
                None,
            )
        else:
            to_send[d.account_id].append(d)

    limited: set[int] = set()
    for pinned, group in to_send.items():
        _send_group(channel, pinned, group, results, limited)
    return write_results(channel, deliveries, results, limited=limited)


def _extend_lease(ids: list[int]) -> None:
    """Rows still waiting in this chunk keep their claim while earlier ones are sent."""
    lease = timezone.now() + timedelta(seconds=_conf("SEND_LEASE_SECONDS"))
    DeliveryRecord.objects.filter(id__in=ids, state=DeliveryState.SENDING).update(lease_until=lease)


def _send_group(
    channel: str,
    pinned: int | None,
    group: list[DeliveryRecord],
    results: dict[int, tuple[SendResult, Route | None]],
    limited: set[int],
) -> None:
    """Send rows that share a pinned account (or none) down the route list: weighted
    accounts, failover to the next on transient errors, rate limits per account."""
    pending = {d.pk: d for d in group}
    routes = routes_for(channel, pinned, group=None)
    for index, route in enumerate(routes):
        ids_now = sorted(pending)
        account = route.account
        if account is not None and account.rate_limit_per_sec and not account.sandbox:
            allowed = ratelimit.acquire(account.pk, account.rate_limit_per_sec, len(ids_now))
            # Over the account's rate: these wait for a later run, not another account.
            for pk in ids_now[allowed:]:
                limited.add(pk)
                results[pk] = (SendResult(pk, ok=False, error="rate limited"), route)
                pending.pop(pk)
            ids_now = ids_now[:allowed]
        if not ids_now:
            break
        if route.provider.journaled:
            route.provider.on_result = journal.record
        size = max(1, route.provider.batch_size)
        batch: list[SendResult] = []
        try:
            for start in range(0, len(ids_now), size):
                if start:
                    _extend_lease(ids_now[start:])
                part = ids_now[start : start + size]
                batch += route.provider.send_batch([_message(pending[i]) for i in part])
        finally:
            route.provider.close()
        transient = [r for r in batch if not r.ok and not r.permanent]
        if batch and len(transient) == len(batch):
            record_failure(account, transient[0].error)
        elif any(r.ok for r in batch):
            record_success(account)
        last_route = index == len(routes) - 1
        for r in batch:
            if r.ok or r.permanent or last_route:
                results[r.delivery_id] = (r, route)
                pending.pop(r.delivery_id, None)
        if not pending:
            break
        # Failover: the transient failures are tried on the next account.
        for r in batch:
            if r.delivery_id in pending:
                _log_attempt(pending[r.delivery_id], r, route)


def _log_attempt(d: DeliveryRecord, r: SendResult, route: Route | None) -> None:
    d.attempt_log = [
        *(d.attempt_log or []),
        {
            "at": timezone.now().isoformat(),
            "account": route.account_id if route else None,
            "provider": route.provider_id if route else "",
            "ok": r.ok,
            "error": r.error,
            "permanent": r.permanent,
        },
    ][-20:]


def update_rows(rows: list[DeliveryRecord], fields: list[str]) -> None:
    """Write each row's own values of `fields`: `bulk_update`, but on PostgreSQL as one
    `UPDATE ... FROM (VALUES ...)` per 1,000 rows instead of a CASE per row and field,
    whose building cost most of a chunk's time."""
    if rows and _values_update(rows, fields) is None:
        DeliveryRecord.objects.bulk_update(rows, fields, batch_size=500)


def transition_rows(
    rows: list[DeliveryRecord],
    fields: list[str],
    *methods: Any,
    from_states: list[str] | None = None,
    **values: Any,
) -> int:
    """`update_rows` and `bulk_transition` in one statement: the rows still in a source
    state of the first transition move to the target of the last one (each step leads
    into the next), with their own `fields` and the shared `values`. One new row version
    instead of one per statement. `from_states` narrows the sources. Returns the number
    of rows moved."""
    if not rows:
        return 0
    target = transition_target(methods[0])
    for method in methods[1:]:
        if target not in transition_sources(method):
            raise ValueError(f"{method.__name__} does not start from {target}")
        target = transition_target(method)
    sources = transition_sources(methods[0])
    if from_states is not None:
        sources = [str(state) for state in from_states if str(state) in sources]
    moved = _values_update(rows, fields, sources=sources, target=target, values=values)
    if moved is None:  # not PostgreSQL: the portable way
        update_rows(rows, fields)
        qs = DeliveryRecord.objects.filter(id__in=[r.pk for r in rows])
        moved = bulk_transition(qs.filter(state__in=sources), methods[0], **values)
        for method in methods[1:]:
            bulk_transition(qs, method)
    return moved


def _values_update(
    rows: list[DeliveryRecord],
    fields: list[str],
    *,
    sources: list[str] | None = None,
    target: str = "",
    values: dict[str, Any] | None = None,
) -> int | None:
    """UPDATE ... FROM (VALUES ...) on PostgreSQL (None elsewhere)."""
    connection = connections[DeliveryRecord.objects.db]
    if connection.vendor != "postgresql":
        return None
    meta = DeliveryRecord._meta
    columns = [meta.get_field(name) for name in fields]
    names = ", ".join(["id", *(c.column for c in columns)])
    assign = [f"{c.column} = v.{c.column}" for c in columns]
    shared: list[Any] = []
    where, where_params = "", []
    if target:
        assign.append("state = %s")
        shared.append(target)
        where = f" AND t.state IN ({', '.join(['%s'] * len(sources))})"
        where_params = list(sources)
    for name, value in (values or {}).items():
        field = meta.get_field(name)
        assign.append(f"{field.column} = %s")
        shared.append(field.get_db_prep_save(value, connection))
    row_sql = (
        "(" + ", ".join(["%s::bigint", *(f"%s::{c.db_type(connection)}" for c in columns)]) + ")"
    )
    moved = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            params: list[Any] = list(shared)
            for row in chunk:
                params.append(row.pk)
                params.extend(
                    c.get_db_prep_save(getattr(row, c.attname), connection) for c in columns
                )
            cursor.execute(
                f"UPDATE {meta.db_table} AS t SET {', '.join(assign)} "
                f"FROM (VALUES {', '.join([row_sql] * len(chunk))}) AS v({names}) "
                f"WHERE t.id = v.id{where}",
                params + where_params,
            )
            moved += cursor.rowcount
    return moved


def write_results(
    channel: str,
    deliveries: list[DeliveryRecord],
    results: dict[int, tuple[SendResult, Route | None]],
    limited: set[int] | None = None,
) -> dict[str, int]:
    now = timezone.now()
    limit = max_attempts(channel)
    limited = limited or set()
    sent, delivered, retry, failed = [], [], defaultdict(list), []
    for d in deliveries:
        r, route = results[d.pk]
        if d.pk in limited:
            continue
        _log_attempt(d, r, route)
        if route is not None:
            d.account_id = route.account_id
            d.provider = route.provider_id
        if r.ok:
            d.provider_message_id = (r.provider_message_id or "")[:200]
            d.error = ""
            (delivered if r.delivered else sent).append(d.pk)
        elif r.permanent or d.attempts >= limit:
            d.error = r.error if r.permanent else f"{r.error} (gave up after {d.attempts} attempts)"
            failed.append(d.pk)
        else:
            d.error = r.error
            delay = max(backoff_seconds(d.attempts), r.retry_after or 0)
            retry[round(delay, 1)].append(d.pk)
    fields = ["attempt_log", "account", "provider", "provider_message_id", "error"]
    by_id = {d.pk: d for d in deliveries}
    retrying = [by_id[i] for ids in retry.values() for i in ids]
    with transaction.atomic():
        # One statement per outcome writes the results and moves the state together.
        sending = DeliveryRecord.objects.filter(state=DeliveryState.SENDING)
        transition_rows(
            [by_id[i] for i in sent],
            fields,
            DeliveryRecord.mark_sent,
            sent_at=now,
            lease_until=None,
        )
        transition_rows(
            [by_id[i] for i in delivered],
            fields,
            DeliveryRecord.mark_sent,
            DeliveryRecord.mark_delivered,
            sent_at=now,
            delivered_at=now,
            lease_until=None,
        )
        transition_rows(
            [by_id[i] for i in failed],
            fields,
            DeliveryRecord.fail,
            from_states=[DeliveryState.SENDING],
            failed_at=now,
            lease_until=None,
        )
        update_rows(retrying, fields)
        lease = timedelta(seconds=_conf("SEND_LEASE_SECONDS"))
        if limited:
            # Not an attempt: back to the queue for the bucket to refill.
            retry_in = _conf("RATE_LIMIT_RETRY_SECONDS")
            not_before = now + timedelta(seconds=retry_in)
            bulk_transition(
                sending.filter(id__in=limited),
                DeliveryRecord.retry,
                attempts=F("attempts") - 1,
                not_before=not_before,
                lease_until=not_before + lease,
            )
            limited_ids = sorted(limited)
            transaction.on_commit(lambda: enqueue_chunk(channel, limited_ids, countdown=retry_in))
        for delay, ids in retry.items():
            not_before = now + timedelta(seconds=delay)
            bulk_transition(
                sending.filter(id__in=ids),
                DeliveryRecord.retry,
                not_before=not_before,
                lease_until=not_before + lease,
            )
            transaction.on_commit(
                lambda ids=ids, delay=delay: enqueue_chunk(channel, ids, countdown=delay)
            )
        if failed:
            # In the same transaction: fallbacks exist before anyone sees the task done.
            failed_set = set(failed)
            deliveries_failed.send(
                sender=DeliveryRecord, deliveries=[d for d in deliveries if d.pk in failed_set]
            )
    task_ids = {d.task_id for d in deliveries if d.pk in set(sent + delivered + failed)}
    if sent or delivered:
        gone = set(sent + delivered)
        deliveries_sent.send(
            sender=DeliveryRecord, deliveries=[d for d in deliveries if d.pk in gone]
        )
    if task_ids:
        deliveries_finished.send(sender=DeliveryRecord, task_ids=task_ids)
    counts = {
        "claimed": len(deliveries),
        "sent": len(sent),
        "delivered": len(delivered),
        "failed": len(failed),
        "retry": sum(len(v) for v in retry.values()),
        "rate_limited": len(limited),
    }
    logger.info("chunk %s %s", channel, counts)
    return counts


# Broker priorities (0 is served first; see CELERY_BROKER_TRANSPORT_OPTIONS).
PRIORITIES = {"high": 0, "normal": 3, "low": 6}


def enqueue_chunk(
    channel: str, ids: list[int], *, countdown: float | None = None, priority: str = "normal"
) -> None:
    """Push one chunk of delivery ids to the channel's queue."""
    from .tasks import send_chunk_task

    kind = get_channel(channel)
    queue = kind.queue if kind else "send_webhook"
    send_chunk_task.apply_async(
        args=[channel, ids],
        queue=queue,
        countdown=countdown,
        priority=PRIORITIES.get(priority, PRIORITIES["normal"]),
    )


def enqueue_ids(channel: str, ids: list[int], *, priority: str = "normal") -> None:
    kind = get_channel(channel)
    size = (kind.chunk_size if kind else 0) or _conf("SEND_CHUNK_SIZE")
    for start in range(0, len(ids), size):
        enqueue_chunk(channel, ids[start : start + size], priority=priority)
