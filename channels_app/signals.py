"""How channels_app talks back without importing tasks_app."""

from django.dispatch import Signal

# Sent after delivery rows of these tasks turned terminal: task_ids=set[uuid].
deliveries_finished = Signal()
# Sent after a permanent failure of deliveries that may have a fallback: deliveries=[...].
deliveries_failed = Signal()
# Sent after deliveries went out (sent or delivered): deliveries=[DeliveryRecord, ...].
# Counters that must count only real sends (dedup, frequency caps) listen here.
deliveries_sent = Signal()
