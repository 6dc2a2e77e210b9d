"""Every MessageTask transition writes a TaskEvent row."""

from django.dispatch import receiver
from django_fsm.signals import post_transition

from channels_app.signals import deliveries_failed, deliveries_finished

from .models import MessageTask, TaskEvent


@receiver(post_transition, sender=MessageTask)
def write_task_event(sender, instance: MessageTask, name, source, target, **kwargs) -> None:
    method_kwargs = kwargs.get("method_kwargs") or {}
    TaskEvent.objects.create(
        task=instance,
        from_state=source,
        to_state=target,
        by=method_kwargs.get("by", "") or "",
        note=method_kwargs.get("note", "") or "",
    )


@receiver(deliveries_finished)
def complete_tasks(sender, task_ids, **kwargs) -> None:
    from .services import finish_tasks_if_done

    finish_tasks_if_done(task_ids)


@receiver(deliveries_failed)
def fall_back(sender, deliveries, **kwargs) -> None:
    from .fallback import create_fallbacks

    create_fallbacks(deliveries)
