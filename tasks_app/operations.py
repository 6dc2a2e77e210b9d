"""Operator actions from the console: retry failed deliveries, release deferred ones
now, send a template to oneself. Keyword-only services, called by the admin (and by
anything else that wants the same action); the lifecycles of DESIGN §4 are respected.

Retrying: a `failed` delivery is terminal and stays as it is, the record of what went
wrong. A retry is a NEW delivery (kind `primary`, `parent` = the failed one) planned like
any other, so policies, routing and receipts all apply again. While the task is
`pushing` the new rows join it; once the task is terminal (`completed`/`failed` have no
way back in the task lifecycle) they go into a new task that repeats the message to the
failed recipients, and both tasks' timelines say so. A failed delivery is retried once:
a second click retries only what failed since."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_app.channels import get_channel
from channels_app.models import DeliveryKind, DeliveryRecord, DeliveryState, SkipReason
from msgcenter.errors import APIError

from . import pipeline
from .models import MessageTask, TaskEvent, TaskState

STAFF_PREFIX = "staff:"


@dataclass
class RetryResult:
    task: MessageTask  # the task the new deliveries belong to
    created: int
    new_task: bool


def retryable(task: MessageTask):
    """Failed deliveries of `task` that no retry delivery points at yet."""
    retried = DeliveryRecord.objects.filter(parent=OuterRef("pk"), kind=DeliveryKind.PRIMARY)
    return (
        DeliveryRecord.objects.filter(task=task, state=DeliveryState.FAILED)
        .exclude(Exists(retried))
        .select_related("recipient")
        .order_by("id")
    )


def _retry_row(target: MessageTask, failed: DeliveryRecord) -> DeliveryRecord:
    content = target.template_version.content_for(failed.channel) or {}
    row = DeliveryRecord(
        task=target,
        recipient=failed.recipient,
        channel=failed.channel,
        kind=DeliveryKind.PRIMARY,
        parent=failed,
        account_id=content.get("account"),
        mentions=failed.mentions or [],
    )
    if failed.recipient_id is None:
        return row  # a group post: same group, same mentions
    kind = get_channel(failed.channel)
    # The operator may have fixed the recipient's address since: take the current one.
    row.address = (kind.address_for(failed.recipient) if kind else "") or failed.address
    if not row.address:
        row.state, row.reason = DeliveryState.SKIPPED, SkipReason.NO_ADDRESS
    return row


def retry_failed(*, task: MessageTask, by: str = "") -> RetryResult:
    """Send the failed deliveries of `task` again, as new deliveries (see the module doc)."""
    from .tasks import plan_task_job

    with transaction.atomic():
        task = (
            MessageTask.objects.select_for_update()
            .select_related("template_version")
            .get(pk=task.pk)
        )
        if task.state not in (TaskState.PUSHING, TaskState.COMPLETED, TaskState.FAILED):
            raise APIError(
                _("A task in state '%(state)s' has no deliveries to retry.")
                % {"state": task.state},
                code="invalid_transition",
                status_code=409,
                details={"state": task.state},
            )
        failed = list(retryable(task))
        if not failed:
            raise APIError(
                _("No failed delivery is waiting for a retry."),
                code="nothing_to_retry",
                status_code=409,
            )
        new_task = task.state != TaskState.PUSHING
        target = _follow_up_task(task, failed, by) if new_task else task
        rows = [_retry_row(target, d) for d in failed]
        DeliveryRecord.objects.bulk_create(rows, batch_size=1000)
        MessageTask.objects.filter(pk=target.pk).update(
            delivery_count=F("delivery_count") + len(rows)
        )
        if new_task:
            target.delivery_count = len(rows)
            target.standardize(
                by=by,
                note=_("retry of task %(task)s: %(n)s failed deliveries")
                % {"task": task.pk, "n": len(rows)},
            )
            target.save(update_fields=["state"])
            # The original task is terminal: its timeline gets a note, not a transition.
            TaskEvent.objects.create(
                task=task,
                from_state=task.state,
                to_state=task.state,
                by=by,
                note=_("%(n)s failed deliveries retried in task %(task)s")
                % {"n": len(rows), "task": target.pk},
            )
        transaction.on_commit(
            lambda pk=str(target.pk): plan_task_job.apply_async(args=[pk], queue="dispatch")
        )
    return RetryResult(task=target, created=len(rows), new_task=new_task)


def _follow_up_task(task: MessageTask, failed: list[DeliveryRecord], by: str) -> MessageTask:
    people = {d.recipient.external_id for d in failed if d.recipient_id}
    return MessageTask.objects.create(
        template=task.template,
        template_version=task.template_version,
        client=task.client,
        params=task.params,
        recipient_params={k: v for k, v in (task.recipient_params or {}).items() if k in people},
        channels=list(dict.fromkeys(d.channel for d in failed)),
        priority=task.priority,
        recipient_count=len(people),
        created_by=by or task.created_by,
        created_at=timezone.now(),
    )


def release_deferred_now(*, task: MessageTask, by: str = "") -> dict[str, Any]:
    """Send now what waits: a `scheduled` task is released (scheduled -> pushing), and the
    task's `deferred` deliveries are planned at once with quiet hours lifted. Opt-outs,
    dedup and frequency caps still hold. Returns what moved."""
    from .services import finish_task_if_done
    from .tasks import plan_task_job

    counts: dict[str, int] = defaultdict(int)
    with transaction.atomic():
        task = (
            MessageTask.objects.select_for_update()
            .select_related("template", "template_version")
            .get(pk=task.pk)
        )
        if task.state == TaskState.SCHEDULED:
            task.release(by=by, note=_("released before its send time from the console"))
            task.save(update_fields=["state"])
            transaction.on_commit(
                lambda pk=str(task.pk): plan_task_job.apply_async(args=[pk], queue="dispatch")
            )
            return {"task_released": True, "deliveries": 0}
        if (
            task.state != TaskState.PUSHING
            or not DeliveryRecord.objects.filter(task=task, state=DeliveryState.DEFERRED).exists()
        ):
            raise APIError(
                _("Nothing of this task is waiting for a later time."),
                code="nothing_deferred",
                status_code=409,
                details={"state": task.state},
            )
    ctx = pipeline._context(task)
    ctx._windows = []  # the operator lifts the quiet hours for these rows
    size = settings.MSGCENTER["PLAN_BATCH_SIZE"]
    released = 0
    while True:
        with transaction.atomic():
            batch = list(
                DeliveryRecord.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(task=task, state=DeliveryState.DEFERRED)
                .select_related("recipient")
                .order_by("id")[:size]
            )
            if not batch:
                break
            pipeline._plan_batch(ctx, batch, counts, now=timezone.now())
            released += len(batch)
    if released:
        TaskEvent.objects.create(
            task=task,
            from_state=task.state,
            to_state=task.state,
            by=by,
            note=_("%(n)s deferred deliveries released now") % {"n": released},
        )
    finish_task_if_done(task.pk)
    return {"task_released": False, "deliveries": released, **counts}


def staff_recipient(user: Any):
    """The recipient standing for a staff user: `staff:<username>`, with their email."""
    from .services import upsert_recipient

    name = (user.get_full_name() or "").strip() or user.get_username()
    recipient, _created = upsert_recipient(
        external_id=f"{STAFF_PREFIX}{user.get_username()}", name=name, email=user.email or ""
    )
    return recipient


def send_test(*, template: Any, user: Any) -> MessageTask:
    """Send the published version of `template` with its sample params to `user`'s own
    in-app inbox and email, through the same service as the API. Deliveries are of kind
    `test` (no fallbacks)."""
    from templates_app.services import published_version

    from .services import send_message

    version = published_version(template.code)
    recipient = staff_recipient(user)
    channels = [
        c
        for c in version.channels
        if c in ("inapp", "email") and get_channel(c).address_for(recipient)
    ]
    if not channels:
        raise APIError(
            _(
                "A test goes to your in-app inbox or your email: the template needs "
                "content for one of them (and your user an email address for "
                "email)."
            ),
            code="invalid_request",
            status_code=400,
        )
    by = user.get_username()
    with transaction.atomic():
        task, _created = send_message(
            client=None,
            template=template.code,
            recipients=[recipient.external_id],
            params=template.sample_params or {},
            channels=channels,
            by=by,
        )
        # Planning starts on commit, so the rows are marked before anyone sends them.
        DeliveryRecord.objects.filter(task=task).update(kind=DeliveryKind.TEST)
    return task
