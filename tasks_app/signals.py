"""Every MessageTask transition writes a TaskEvent row."""

from django.dispatch import receiver
from django_fsm.signals import post_transition

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
