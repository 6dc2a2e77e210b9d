"""Celery jobs of tasks_app: planning, and the beat ticks that move deferred work on."""

from celery import shared_task

from . import pipeline, scheduler


@shared_task(name="tasks.plan_task", acks_late=True)
def plan_task_job(task_id: str) -> dict:
    return pipeline.plan_task(task_id)


@shared_task(name="tasks.release_due", acks_late=True)
def release_due() -> dict:
    return scheduler.release_due()


@shared_task(name="tasks.sweep_stuck", acks_late=True)
def sweep_stuck() -> dict:
    return scheduler.sweep_stuck()
