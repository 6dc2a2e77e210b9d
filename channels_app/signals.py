"""How channels_app talks back without importing tasks_app."""

from django.dispatch import Signal

# Sent after delivery rows of these tasks turned terminal: task_ids=set[uuid].
deliveries_finished = Signal()
# Sent after a permanent failure of deliveries that may have a fallback: deliveries=[...].
deliveries_failed = Signal()
