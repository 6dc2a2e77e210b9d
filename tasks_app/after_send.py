"""What happens after deliveries went out (the `deliveries_sent` signal): dedup stamps
and cap counters (only real sends count, DESIGN §7) and read reminders (DESIGN §8)."""

from __future__ import annotations

import logging

from django.dispatch import receiver
from django.utils import timezone

from channels_app.signals import deliveries_sent

from . import limits, reminders
from .models import MessageTask

logger = logging.getLogger("msgcenter.policies")


@receiver(deliveries_sent, dispatch_uid="tasks_app.after_send")
def after_send(sender, deliveries, **kwargs) -> None:
    # Never raise: the sends are recorded already, and the sender still has to signal
    # the tasks' completion after us.
    if not deliveries:
        return
    now = timezone.now()
    try:
        settings_by_task = dict(
            MessageTask.objects.filter(pk__in={d.task_id for d in deliveries}).values_list(
                "pk", "template_version__settings"
            )
        )
    except Exception:  # noqa: BLE001
        logger.exception("could not load the policies of %d sent deliveries", len(deliveries))
        return
    try:
        limits.count_sent(deliveries, settings_by_task, now)
    except Exception:  # noqa: BLE001 - a counter outage must not undo a send
        logger.exception("could not count %d sent deliveries", len(deliveries))
    try:
        reminders.schedule(deliveries, settings_by_task)
    except Exception:  # noqa: BLE001
        logger.exception("could not plan read reminders for %d deliveries", len(deliveries))
