"""Broker priorities: a high-priority chunk is served before normal ones already queued."""

from kombu import Exchange, Queue

from channels_app.sending import PRIORITIES
from channels_app.tasks import send_chunk_task
from msgcenter.celery import app


def test_high_priority_overtakes_queued_normal_chunks():
    queue = Queue("priority_probe", Exchange("priority_probe"), routing_key="priority_probe")
    with app.connection_for_write() as conn:
        simple = conn.SimpleQueue(queue)
        simple.clear()
        for i in range(3):
            send_chunk_task.apply_async(
                args=["email", [i]], queue=queue, connection=conn, priority=PRIORITIES["normal"]
            )
        send_chunk_task.apply_async(
            args=["email", [99]], queue=queue, connection=conn, priority=PRIORITIES["high"]
        )
        send_chunk_task.apply_async(
            args=["email", [50]], queue=queue, connection=conn, priority=PRIORITIES["low"]
        )
        order = []
        for _ in range(5):
            message = simple.get(timeout=2)
            order.append(message.payload[0][1][0])
            message.ack()
        simple.close()
    assert order == [99, 0, 1, 2, 50]
