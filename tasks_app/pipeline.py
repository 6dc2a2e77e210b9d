"""Planning (DESIGN §5.2): turn a task's `pending` deliveries into `queued` chunks on
the channels' queues, after the policies had their say. Works in batches: a few
queries per batch, never one per delivery."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from channels_app.models import DeliveryKind, DeliveryRecord, DeliveryState
from channels_app.sending import enqueue_ids, transition_rows
from channels_app.signals import deliveries_finished, deliveries_sent
from channels_app.transitions import bulk_transition
from templates_app.rendering import RenderError, render_content

from . import policies
from .models import MessageTask, TaskState
from .preferences import TRANSACTIONAL, list_unsubscribe_headers, unsubscribe_url

logger = logging.getLogger("msgcenter.pipeline")


EMPTY_RECIPIENT = {"external_id": "", "name": "", "email": "", "phone": "", "locale": ""}


def recipient_context(recipient: Any) -> dict[str, Any]:
    if recipient is None:
        return dict(EMPTY_RECIPIENT)
    return {
        "external_id": recipient.external_id,
        "name": recipient.name,
        "email": recipient.email,
        "phone": recipient.phone,
        "locale": recipient.locale,
    }


def params_for(task: MessageTask, d: DeliveryRecord) -> dict[str, Any]:
    """Shared params, the recipient's own params over them, and `recipient` itself.
    Group deliveries get an empty `recipient` and the mentioned `recipients`."""
    params = dict(task.params or {})
    recipient = d.recipient if d.recipient_id else None
    if recipient is not None:
        params.update((task.recipient_params or {}).get(recipient.external_id, {}))
    params.setdefault("recipient", recipient_context(recipient))
    if recipient is None:
        params.setdefault("recipients", d.mentions or [])
    return params


def _mentions_unsubscribe(content: dict[str, Any]) -> bool:
    return any(
        "unsubscribe_url" in str(content.get(field) or "")
        for field in ("subject", "body", "body_html", "extra")
    )


def render_delivery(task: MessageTask, d: DeliveryRecord) -> dict[str, Any]:
    version = task.template_version
    locale = d.recipient.locale if d.recipient_id else ""
    content = version.content_for(d.channel, locale)
    if content is None and d.kind == DeliveryKind.REMINDER:
        # A read reminder on a channel the template has no content for says the same
        # as the in-app message it reminds of.
        content = version.content_for("inapp", locale)
    snapshot: dict[str, Any] = {"template": task.template.code, "category": version.category}
    if content is None:
        snapshot["render_error"] = f"no content for channel {d.channel}"
        return snapshot
    params = params_for(task, d)
    unsubscribe = ""
    # The signed link costs a signature per delivery: made for email (its headers) and
    # for contents that show it, not for every in-app message of a campaign.
    if (
        d.recipient_id
        and version.category not in TRANSACTIONAL
        and (d.channel == "email" or _mentions_unsubscribe(content))
    ):
        unsubscribe = unsubscribe_url(
            delivery_id=d.pk,
            recipient_id=d.recipient_id,
            category=version.category,
            channel=d.channel,
        )
    params.setdefault("unsubscribe_url", unsubscribe)
    try:
        rendered = render_content(
            content, params, cache_key=(version.pk, content["channel"], content["locale"])
        )
    except RenderError as exc:
        snapshot["render_error"] = exc.message
        return snapshot
    snapshot.update(rendered)
    if unsubscribe:
        snapshot["unsubscribe_url"] = unsubscribe
        if d.channel == "email":
            snapshot["headers"] = {
                **(snapshot.get("headers") or {}),
                **list_unsubscribe_headers(unsubscribe),
            }
    return snapshot


def plan_task(task_id: str) -> dict[str, int]:
    """Start a `tasked` task (or continue a `pushing` one) and plan its pending deliveries."""
    from .services import finish_task_if_done

    with transaction.atomic():
        task = (
            MessageTask.objects.select_for_update()
            .select_related("template", "template_version")
            .filter(pk=task_id)
            .first()
        )
        if task is None:
            return {}
        if task.state == TaskState.TASKED:
            task.start(by="planner")
            task.save(update_fields=["state"])
        elif task.state != TaskState.PUSHING:
            return {}
    counts = plan_deliveries(task)
    finish_task_if_done(task.pk)
    return counts


def plan_deliveries(task: MessageTask) -> dict[str, int]:
    """Plan every `pending` delivery of `task`, one locked batch at a time (SKIP LOCKED:
    two planners of the same task never handle the same rows)."""
    size = settings.MSGCENTER["PLAN_BATCH_SIZE"]
    ctx = _context(task)
    counts: dict[str, int] = defaultdict(int)
    last_id = 0
    while True:
        with transaction.atomic():
            batch = list(
                DeliveryRecord.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(task=task, state=DeliveryState.PENDING, id__gt=last_id)
                .select_related("recipient")
                .order_by("id")[:size]
            )
            if not batch:
                break
            _plan_batch(ctx, batch, counts)
            last_id = batch[-1].pk
    return dict(counts)


def _context(task: MessageTask) -> policies.PlanContext:
    return policies.PlanContext(
        task=task,
        version=task.template_version,
        category=task.template_version.category,
        render=lambda d: render_delivery(task, d),
    )


def _plan_batch(
    ctx: policies.PlanContext,
    batch: list[DeliveryRecord],
    counts: dict[str, int],
    *,
    now: datetime | None = None,
) -> None:
    """Decide, render and enqueue one batch of `pending` (or due `deferred`) deliveries.
    A deferred row deferred again only gets its new release time."""
    now = now or timezone.now()
    decisions = policies.decide(ctx, batch, now)
    skips: dict[str, list[int]] = defaultdict(list)
    defers: dict[Any, list[int]] = defaultdict(list)
    go: list[DeliveryRecord] = []
    for d in batch:
        decision = decisions.get(d.pk)
        if isinstance(decision, policies.Skip):
            skips[decision.reason].append(d.pk)
        elif isinstance(decision, policies.Defer):
            defers[decision.until].append(d.pk)
        else:
            ctx.content(d)
            go.append(d)
    lease = timedelta(seconds=settings.MSGCENTER["SEND_LEASE_SECONDS"])
    by_channel: dict[str, list[int]] = defaultdict(list)
    with transaction.atomic():
        pending = DeliveryRecord.objects.filter(
            state__in=[DeliveryState.PENDING, DeliveryState.DEFERRED]
        )
        for reason, ids in skips.items():
            counts["skipped"] += bulk_transition(
                pending.filter(id__in=ids), DeliveryRecord.skip, reason=reason
            )
        for until, ids in defers.items():
            counts["deferred"] += bulk_transition(
                pending.filter(id__in=ids), DeliveryRecord.defer, not_before=until
            )
            counts["deferred"] += (
                DeliveryRecord.objects.filter(id__in=ids, state=DeliveryState.DEFERRED)
                .exclude(not_before=until)
                .update(not_before=until)
            )
        # In-app: the delivery row is the inbox item, so storing its rendered content
        # delivers it. Rows that failed to render go the normal way and fail there.
        inbox = [
            d for d in go if d.channel == "inapp" and not (d.content or {}).get("render_error")
        ]
        stored = {d.pk for d in inbox}
        queued = [d for d in go if d.pk not in stored]
        if inbox:
            counts["delivered"] += transition_rows(
                inbox,
                ["content"],
                DeliveryRecord.enqueue,
                DeliveryRecord.claim,
                DeliveryRecord.mark_sent,
                DeliveryRecord.mark_delivered,
                queued_at=now,
                sent_at=now,
                delivered_at=now,
                attempts=1,
                provider="inapp",
                not_before=None,
                lease_until=None,
            )
            # Counted at once (like a sender would after its write), in this transaction.
            _stored_in_inbox(inbox, {d.task_id for d in inbox})
        if queued:
            # The rendered content and the move to `queued` in one statement.
            counts["queued"] += transition_rows(
                queued,
                ["content"],
                DeliveryRecord.enqueue,
                queued_at=now,
                not_before=None,
                lease_until=now + lease,
            )
            for d in queued:
                by_channel[d.channel].append(d.pk)
        priority = ctx.task.priority
        transaction.on_commit(
            lambda: [enqueue_ids(ch, ids, priority=priority) for ch, ids in by_channel.items()]
        )


def _stored_in_inbox(rows: list[DeliveryRecord], task_ids: set) -> None:
    """What a sender does after a send, for in-app rows delivered by planning."""
    deliveries_sent.send(sender=DeliveryRecord, deliveries=rows)
    deliveries_finished.send(sender=DeliveryRecord, task_ids=task_ids)


def release_deliveries(batch: list[DeliveryRecord], now: datetime | None = None) -> dict[str, int]:
    """Plan due `deferred` deliveries (claimed by the caller), grouped by task. The
    policies run again: an opt-out made overnight, a cap reached meanwhile or another
    quiet window still hold them back."""
    return plan_rows(batch, now=now)


def plan_rows(rows: list[DeliveryRecord], now: datetime | None = None) -> dict[str, int]:
    """Plan deliveries of any tasks (locked or new rows), one batch per task."""
    counts: dict[str, int] = defaultdict(int)
    by_task: dict[Any, list[DeliveryRecord]] = defaultdict(list)
    for d in rows:
        by_task[d.task_id].append(d)
    tasks = MessageTask.objects.select_related("template", "template_version").in_bulk(
        list(by_task)
    )
    for task_id, task_rows in by_task.items():
        _plan_batch(_context(tasks[task_id]), task_rows, counts, now=now)
    return dict(counts)
