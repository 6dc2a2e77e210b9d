from celery import shared_task

from . import sending


@shared_task(name="channels.send_chunk", acks_late=True)
def send_chunk_task(channel: str, ids: list[int]) -> dict:
    return sending.send_chunk(channel, ids)
