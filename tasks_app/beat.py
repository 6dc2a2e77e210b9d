"""The beat scheduler: django-celery-beat's DatabaseScheduler, plus the time it fires a
recurring send passed along as `scheduled_for`, so that the run is named after beat's
own clock (a duplicate firing of the same occurrence then names the same run)."""

from __future__ import annotations

from django_celery_beat.schedulers import DatabaseScheduler

from .recurring import RUN_TASK


class Scheduler(DatabaseScheduler):
    def apply_entry(self, entry, producer=None):
        if entry.task == RUN_TASK:
            entry.kwargs = {**(entry.kwargs or {}), "scheduled_for": self.app.now().isoformat()}
        return super().apply_entry(entry, producer=producer)
