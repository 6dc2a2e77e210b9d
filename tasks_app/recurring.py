"""Recurring sends: a template sent to an audience on a crontab (DESIGN §6).

Each RecurringSend owns one django-celery-beat PeriodicTask (and its CrontabSchedule in
the send's timezone), created, updated, disabled and deleted with it through the model
signals below, so the admin and the API keep them in step alike.

Each run creates one MessageTask whose idempotency key names the crontab occurrence it
belongs to (`recurring-<id>-<YYYYMMDDTHHMM>` in the send's timezone). Beat passes the
time it fired (tasks_app.beat.Scheduler); a beat restart or a second beat that fires the
same occurrence again lands on the same key and gets the existing task back."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from celery.schedules import crontab
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from msgcenter.errors import APIError, InvalidRequest

from .models import RecurringSend
from .quiet_hours import zone_for

logger = logging.getLogger("msgcenter.recurring")

RUN_TASK = "tasks.run_recurring_send"
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
MAX_DAYS = 366 * 8  # enough to find Feb 29 on a given weekday


# --- crontab arithmetic ---------------------------------------------------------------


def parse_crontab(expr: str) -> dict[str, str]:
    """ "m h dom mon dow" -> fields; ValueError with a readable message if invalid."""
    parts = (expr or "").split()
    if len(parts) != 5:
        raise ValueError("a crontab has 5 fields: minute hour day-of-month month day-of-week")
    fields = dict(zip(CRON_FIELDS, parts, strict=True))
    schedule_for(fields)
    return fields


def schedule_for(fields: dict[str, str]) -> crontab:
    try:
        return crontab(**fields)
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(f"invalid crontab: {exc}") from exc


def _fields(rs: RecurringSend) -> dict[str, str]:
    return {f: getattr(rs, f) for f in CRON_FIELDS}


def _day_matches(cron: crontab, day: date) -> bool:
    # Celery's crontab requires day-of-month and day-of-week to match both.
    return (
        day.month in cron.month_of_year
        and day.day in cron.day_of_month
        and (day.weekday() + 1) % 7 in cron.day_of_week
    )


def _local(day: date, hour: int, minute: int, tz) -> datetime | None:
    """The instant the local clock shows day hour:minute (None inside a DST gap)."""
    naive = datetime(day.year, day.month, day.day, hour, minute)
    aware = naive.replace(tzinfo=tz, fold=0)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return aware.astimezone(UTC)


def previous_occurrence(fields: dict[str, str], tz_name: str, at: datetime) -> datetime | None:
    """The latest occurrence at or before `at` (UTC), read in the timezone `tz_name`."""
    cron = schedule_for(fields)
    tz = zone_for(tz_name)
    local = at.astimezone(tz)
    hours = sorted(cron.hour, reverse=True)
    minutes = sorted(cron.minute, reverse=True)
    for back in range(MAX_DAYS):
        day = local.date() - timedelta(days=back)
        if not _day_matches(cron, day):
            continue
        for h in hours:
            if back == 0 and h > local.hour:
                continue
            for m in minutes:
                if back == 0 and h == local.hour and m > local.minute:
                    continue
                instant = _local(day, h, m, tz)
                if instant is not None and instant <= at:
                    return instant
    return None


def next_occurrence(fields: dict[str, str], tz_name: str, after: datetime) -> datetime | None:
    """The first occurrence strictly after `after` (UTC)."""
    cron = schedule_for(fields)
    tz = zone_for(tz_name)
    local = after.astimezone(tz)
    hours, minutes = sorted(cron.hour), sorted(cron.minute)
    for ahead in range(MAX_DAYS):
        day = local.date() + timedelta(days=ahead)
        if not _day_matches(cron, day):
            continue
        for h in hours:
            if ahead == 0 and h < local.hour:
                continue
            for m in minutes:
                instant = _local(day, h, m, tz)
                if instant is not None and instant > after:
                    return instant
    return None


def run_key(rs: RecurringSend, occurrence: datetime) -> str:
    local = occurrence.astimezone(zone_for(rs.timezone))
    return f"recurring-{rs.pk}-{local:%Y%m%dT%H%M}"


# --- keeping the PeriodicTask in step ---------------------------------------------------


def sync_periodic_task(rs: RecurringSend) -> Any:
    """Create or update the PeriodicTask (and CrontabSchedule) of `rs`."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    schedule, _ = CrontabSchedule.objects.get_or_create(
        **_fields(rs), timezone=zone_for(rs.timezone)
    )
    name = f"recurring-send {rs.pk}: {rs.name}"[:200]
    values = {
        "name": name,
        "task": RUN_TASK,
        "crontab": schedule,
        "interval": None,
        "kwargs": json.dumps({"recurring_send_id": rs.pk}),
        "queue": "dispatch",
        "enabled": rs.enabled,
        "description": f"Recurring send '{rs.name}' (tasks_app)",
    }
    pt = (
        PeriodicTask.objects.filter(pk=rs.periodic_task_id).first() if rs.periodic_task_id else None
    )
    old_schedule = pt.crontab_id if pt else None
    if pt is None:
        pt = PeriodicTask.objects.create(**values)
        RecurringSend.objects.filter(pk=rs.pk).update(periodic_task=pt)
        rs.periodic_task = pt
    else:
        changed = [k for k, v in values.items() if getattr(pt, k) != v]
        for key in changed:
            setattr(pt, key, values[key])
        if changed:
            pt.save()
    if old_schedule and old_schedule != schedule.pk:
        CrontabSchedule.objects.filter(pk=old_schedule, periodictask__isnull=True).delete()
    return pt


@receiver(post_save, sender=RecurringSend, dispatch_uid="recurring_send_sync")
def _on_save(sender, instance: RecurringSend, raw: bool = False, **kwargs) -> None:
    if not raw:
        sync_periodic_task(instance)


@receiver(post_delete, sender=RecurringSend, dispatch_uid="recurring_send_delete")
def _on_delete(sender, instance: RecurringSend, **kwargs) -> None:
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    if instance.periodic_task_id:
        pt = PeriodicTask.objects.filter(pk=instance.periodic_task_id).first()
        if pt is not None:
            schedule_id = pt.crontab_id
            pt.delete()
            CrontabSchedule.objects.filter(pk=schedule_id, periodictask__isnull=True).delete()


# --- a run -------------------------------------------------------------------------------


def run(recurring_send_id: int, scheduled_for: datetime | None = None) -> dict[str, Any]:
    """One run: the task of the occurrence at (or just before) `scheduled_for`."""
    from .services import send_message

    fired = scheduled_for or timezone.now()
    with transaction.atomic():
        # The row lock serializes duplicate runs, so the idempotency check is race-free
        # even for sends without an API client.
        rs = (
            RecurringSend.objects.select_for_update(of=("self",))
            .select_related("template", "client")
            .filter(pk=recurring_send_id)
            .first()
        )
        if rs is None or not rs.enabled:
            return {"skipped": "missing or disabled"}
        # Beat fires at (or a moment after) the occurrence; a second of slack keeps a
        # clock a hair behind from naming the previous one.
        occurrence = previous_occurrence(_fields(rs), rs.timezone, fired + timedelta(seconds=1))
        if occurrence is None:
            occurrence = fired.replace(second=0, microsecond=0)
        key = run_key(rs, occurrence)
        audience = rs.audience or {}
        recipients = audience.get("recipients") if "recipients" in audience else audience
        try:
            task, created = send_message(
                client=rs.client,
                template=rs.template.code,
                recipients=recipients,
                params=rs.params or {},
                channels=rs.channels or None,
                idempotency_key=key,
                fingerprint=hashlib.sha256(key.encode()).hexdigest(),
                by=f"recurring:{rs.name}"[:200],
            )
        except APIError as exc:
            logger.warning("recurring send %s (%s) could not run: %s", rs.pk, key, exc.detail)
            return {"error": str(exc.detail), "key": key}
        RecurringSend.objects.filter(pk=rs.pk).update(last_run_at=occurrence)
    return {"task": str(task.pk), "created": created, "key": key}


# --- services for the API and the admin -------------------------------------------------

EDITABLE = ("name", "template", "audience", "params", "channels", "crontab", "timezone", "enabled")


def _check(values: dict[str, Any]) -> dict[str, Any]:
    """Validate a complete set of values; returns the model fields to store. An enabled
    send needs a published template and params that fit it; a disabled one only a
    template that exists (so that a send can be switched off after its template was
    archived)."""
    from templates_app.models import MessageTemplate
    from templates_app.services import published_version

    from .audiences import check_params, parse_audience
    from .services import _check_channels, _validate_all_params, parse_recipients

    enabled = values.get("enabled", True)
    version = published_version(values["template"]) if enabled else None
    template = (
        version.template
        if version
        else MessageTemplate.objects.filter(code=values["template"]).first()
    )
    if template is None:
        raise APIError(
            f"Template '{values['template']}' does not exist.",
            code="template_not_found",
            status_code=404,
            details={"template": values["template"]},
        )
    channels = values.get("channels") or []
    if channels and version:
        _check_channels(version, channels)
    audience = values["audience"]
    params = values.get("params") or {}
    if isinstance(audience, dict) and set(audience) == {"recipients"}:
        specs = parse_recipients(audience["recipients"])
        if version:
            _validate_all_params(version, params, specs)
    else:
        try:
            audience = parse_audience(audience)
        except InvalidRequest:
            raise InvalidRequest(
                'audience must be {"recipients": [...]}, {"tag": "..."} or {"all": true}.',
                details={"field": "audience"},
            )
        if version:
            check_params(version, params)
    try:
        cron = parse_crontab(values["crontab"])
    except ValueError as exc:
        raise InvalidRequest(f"crontab: {exc}.", details={"field": "crontab"})
    return {
        "name": values["name"],
        "template": template,
        "audience": audience,
        "params": params,
        "channels": channels,
        "timezone": values.get("timezone") or "UTC",
        "enabled": enabled,
        **cron,
    }


def _unique_name(name: str, exclude: int | None = None) -> None:
    qs = RecurringSend.objects.filter(name=name)
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    if qs.exists():
        raise APIError(
            f"A recurring send named '{name}' already exists.",
            code="conflict",
            status_code=409,
            details={"field": "name"},
        )


def current_values(rs: RecurringSend) -> dict[str, Any]:
    return {
        "name": rs.name,
        "template": rs.template.code,
        "audience": rs.audience,
        "params": rs.params,
        "channels": rs.channels,
        "crontab": rs.crontab_expr,
        "timezone": rs.timezone,
        "enabled": rs.enabled,
    }


def create_recurring_send(*, client: Any = None, **values: Any) -> RecurringSend:
    fields = _check(values)
    _unique_name(fields["name"])
    with transaction.atomic():
        return RecurringSend.objects.create(client=client, **fields)


def update_recurring_send(*, recurring_send: RecurringSend, **changes: Any) -> RecurringSend:
    values = {
        **current_values(recurring_send),
        **{k: v for k, v in changes.items() if k in EDITABLE},
    }
    fields = _check(values)
    _unique_name(fields["name"], exclude=recurring_send.pk)
    with transaction.atomic():
        for key, value in fields.items():
            setattr(recurring_send, key, value)
        recurring_send.save()
    return recurring_send


def delete_recurring_send(*, recurring_send: RecurringSend) -> None:
    with transaction.atomic():
        recurring_send.delete()
