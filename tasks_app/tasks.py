"""Celery jobs of tasks_app: planning, audience fan-out, recurring runs, and the beat
ticks that move deferred work on."""

from __future__ import annotations

from celery import shared_task
from django.utils.dateparse import parse_datetime

from . import audiences, pipeline, recurring, scheduler


@shared_task(name="tasks.plan_task", acks_late=True)
def plan_task_job(task_id: str) -> dict:
    return pipeline.plan_task(task_id)


@shared_task(name="tasks.fan_out", acks_late=True)
def fan_out_job(task_id: str) -> dict:
    return audiences.fan_out(task_id)


@shared_task(name=recurring.RUN_TASK, acks_late=True)
def run_recurring_send(recurring_send_id: int, scheduled_for: str | None = None) -> dict:
    when = parse_datetime(scheduled_for) if scheduled_for else None
    return recurring.run(recurring_send_id, scheduled_for=when)


@shared_task(name="tasks.release_due", acks_late=True)
def release_due() -> dict:
    return scheduler.release_due()


@shared_task(name="tasks.sweep_stuck", acks_late=True)
def sweep_stuck() -> dict:
    return scheduler.sweep_stuck()
