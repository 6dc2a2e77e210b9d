"""The Celery app. Queues: `dispatch` for planning and ticks, one `send_<group>` per
channel group so that a slow provider never stalls another."""

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msgcenter.settings")

app = Celery("msgcenter")
app.config_from_object("django.conf:settings", namespace="CELERY")

SEND_QUEUES = ("send_inapp", "send_email", "send_sms", "send_im", "send_webhook")
ALL_QUEUES = ("dispatch", *SEND_QUEUES)
# One direct exchange per queue, routing key = queue name: a message reaches one queue.
app.conf.task_queues = [
    Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ALL_QUEUES
]
app.conf.task_default_exchange = "dispatch"
app.conf.task_default_routing_key = "dispatch"
app.autodiscover_tasks()
