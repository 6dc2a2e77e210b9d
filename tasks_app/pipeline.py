"""Planning (DESIGN §5.2): turn a task's `pending` deliveries into `queued` chunks on
the channels' queues, after the policies had their say. Works in batches: a few
queries per batch, never one per delivery."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from channels_app.models import DeliveryRecord, DeliveryState
from channels_app.sending import enqueue_ids
from channels_app.transitions import bulk_transition
from templates_app.rendering import RenderError, render_content

from . import policies
from .models import MessageTask, TaskState

logger = logging.getLogger("msgcenter.pipeline")


EMPTY_RECIPIENT = {"external_id": "", "name": "", "email": "", "phone": "", "locale": ""}


def recipient_context(recipient: Any) -> dict[str, Any]:
    if recipient is None:
        return dict(EMPTY_RECIPIENT)
    return {"external_id": recipient.external_id, "name": recipient.name,
            "email": recipient.email, "phone": recipient.phone, "locale": recipient.locale}


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


def render_delivery(task: MessageTask, d: DeliveryRecord) -> dict[str, Any]:
    version = task.template_version
    locale = d.recipient.locale if d.recipient_id else ""
    content = version.content_for(d.channel, locale)
    snapshot: dict[str, Any] = {"template": task.template.code, "category": version.category}
    if content is None:
        snapshot["render_error"] = f"no content for channel {d.channel}"
        return snapshot
    try:
        rendered = render_content(
            content, params_for(task, d),
            cache_key=(version.pk, content["channel"], content["locale"]))
    except RenderError as exc:
        snapshot["render_error"] = exc.message
        return snapshot
    snapshot.update(rendered)
    return snapshot


def plan_task(task_id: str) -> dict[str, int]:
    """Start a `tasked` task (or continue a `pushing` one) and plan its pending deliveries."""
    from .services import finish_task_if_done

    with transaction.atomic():
        task = (MessageTask.objects.select_for_update()
                .select_related("template", "template_version").filter(pk=task_id).first())
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
    ctx = policies.PlanContext(task=task, version=task.template_version,
                               category=task.template_version.category)
    counts: dict[str, int] = defaultdict(int)
    last_id = 0
    while True:
        with transaction.atomic():
            batch = list(
                DeliveryRecord.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(task=task, state=DeliveryState.PENDING, id__gt=last_id)
                .select_related("recipient").order_by("id")[:size]
            )
            if not batch:
                break
            _plan_batch(ctx, batch, counts)
            last_id = batch[-1].pk
    return dict(counts)


def _plan_batch(ctx: policies.PlanContext, batch: list[DeliveryRecord],
                counts: dict[str, int], *, apply_policies: bool = True) -> None:
    """Decide, render and enqueue one batch of `pending` (or due `deferred`) deliveries."""
    now = timezone.now()
    decisions = policies.decide(ctx, batch, now) if apply_policies else {}
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
            d.content = render_delivery(ctx.task, d)
            go.append(d)
    lease = timedelta(seconds=settings.MSGCENTER["SEND_LEASE_SECONDS"])
    by_channel: dict[str, list[int]] = defaultdict(list)
    with transaction.atomic():
        pending = DeliveryRecord.objects.filter(
            state__in=[DeliveryState.PENDING, DeliveryState.DEFERRED])
        for reason, ids in skips.items():
            counts["skipped"] += bulk_transition(pending.filter(id__in=ids), DeliveryRecord.skip,
                                                 reason=reason)
        for until, ids in defers.items():
            counts["deferred"] += bulk_transition(pending.filter(id__in=ids),
                                                  DeliveryRecord.defer, not_before=until)
        if go:
            DeliveryRecord.objects.bulk_update(go, ["content"], batch_size=500)
            ids = [d.pk for d in go]
            counts["queued"] += bulk_transition(
                pending.filter(id__in=ids), DeliveryRecord.enqueue, queued_at=now,
                lease_until=now + lease)
            for d in go:
                by_channel[d.channel].append(d.pk)
        transaction.on_commit(lambda: [enqueue_ids(ch, ids) for ch, ids in by_channel.items()])


def release_deliveries(batch: list[DeliveryRecord]) -> dict[str, int]:
    """Render and enqueue due `deferred` deliveries (claimed by the caller), grouped by task."""
    counts: dict[str, int] = defaultdict(int)
    by_task: dict[Any, list[DeliveryRecord]] = defaultdict(list)
    for d in batch:
        by_task[d.task_id].append(d)
    tasks = MessageTask.objects.select_related("template", "template_version").in_bulk(
        list(by_task))
    for task_id, rows in by_task.items():
        task = tasks[task_id]
        ctx = policies.PlanContext(task=task, version=task.template_version,
                                   category=task.template_version.category)
        _plan_batch(ctx, rows, counts, apply_policies=False)
    return dict(counts)
