from celery import shared_task

from . import rollup, sending


@shared_task(name="channels.send_chunk", acks_late=True)
def send_chunk_task(channel: str, ids: list[int]) -> dict:
    return sending.send_chunk(channel, ids)


@shared_task(name="channels.rollup_stats", acks_late=True)
def rollup_stats_task() -> int:
    """Beat tick: recompute the dashboard rollup of the recent hours."""
    return rollup.refresh()
