"""send_at and the beat ticks in-process: release of scheduled tasks at their time,
cancel while scheduled, two release_due runs racing (PostgreSQL SKIP LOCKED), and
sweep_stuck re-enqueueing work whose lease ran out."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from channels_app.models import DeliveryRecord
from channels_app.sending import claim
from tasks_app import pipeline, scheduler
from tasks_app.models import MessageTask, Recipient, TaskEvent
from tasks_app.services import send_message
from tests import factories


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def setup(db):
    # Email: planned deliveries wait `queued` for a sender (in-app ones are delivered by
    # planning itself).
    factories.published_template(channels=("email",))
    factories.recipients(2)


def test_send_at_schedules_the_task_and_release_due_starts_it_on_time(api, setup):
    with time_machine.travel(utc(2026, 5, 10, 9, 0), tick=False):
        r = api.post(
            "/api/v1/messages",
            {
                "template": "order_shipped",
                "recipients": ["u-1001", "u-1002"],
                "params": {"order_no": "S1"},
                "send_at": "2026-05-10T17:30:00+08:00",
            },
            format="json",
        )
        assert r.status_code == 202 and r.json()["state"] == "scheduled"
        task_id = r.json()["id"]
    with time_machine.travel(utc(2026, 5, 10, 9, 29, 59), tick=False):
        assert scheduler.release_due()["tasks"] == 0
    assert MessageTask.objects.get(pk=task_id).state == "scheduled"
    assert set(DeliveryRecord.objects.filter(task_id=task_id).values_list("state", flat=True)) == {
        "pending"
    }
    with time_machine.travel(utc(2026, 5, 10, 9, 30), tick=False):
        assert scheduler.release_due()["tasks"] == 1
        assert scheduler.release_due()["tasks"] == 0  # never twice
        pipeline.plan_task(task_id)  # what the dispatch worker does on commit
    task = MessageTask.objects.get(pk=task_id)
    assert task.state == "pushing"
    assert set(DeliveryRecord.objects.filter(task=task).values_list("state", flat=True)) == {
        "queued"
    }
    events = [(e.from_state, e.to_state, e.by) for e in task.events.all()]
    assert events[-1] == ("scheduled", "pushing", "release_due")


def test_cancel_while_scheduled(api, setup):
    r = api.post(
        "/api/v1/messages",
        {
            "template": "order_shipped",
            "recipients": ["u-1001"],
            "params": {"order_no": "S2"},
            "send_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
        format="json",
    )
    task_id = r.json()["id"]
    cancelled = api.post(f"/api/v1/messages/{task_id}/cancel")
    assert cancelled.json() == {"id": task_id, "state": "cancelled"}
    assert list(DeliveryRecord.objects.filter(task_id=task_id).values_list("state", "reason")) == [
        ("skipped", "cancelled")
    ]
    scheduler.release_due(now=datetime.now(UTC) + timedelta(hours=2))
    assert MessageTask.objects.get(pk=task_id).state == "cancelled"


def test_past_send_at_sends_now(api, setup):
    r = api.post(
        "/api/v1/messages",
        {
            "template": "order_shipped",
            "recipients": ["u-1001"],
            "params": {"order_no": "S3"},
            "send_at": "2020-01-01T00:00:00Z",
        },
        format="json",
    )
    assert r.json()["state"] == "tasked"


def _make_due_work(n_tasks: int, n_deferred: int) -> tuple[list, list]:
    people = factories.recipients(3)
    ids = [p.external_id for p in people]
    future = datetime.now(UTC) + timedelta(days=1)
    tasks = []
    for i in range(n_tasks):
        task, _ = send_message(
            client=None,
            template="order_shipped",
            recipients=ids,
            params={"order_no": f"T{i}"},
            send_at=future,
        )
        tasks.append(task.pk)
    # One task in flight whose deliveries were deferred (e.g. by quiet hours).
    carrier, _ = send_message(
        client=None,
        template="order_shipped",
        recipients=ids,
        params={"order_no": "D"},
        send_at=future,
    )
    MessageTask.objects.filter(pk=carrier.pk).update(state="pushing")
    due = datetime.now(UTC) - timedelta(minutes=1)
    crowd = Recipient.objects.bulk_create(
        [Recipient(external_id=f"c-{i}", name=f"C {i}") for i in range(n_deferred)]
    )
    rows = [
        DeliveryRecord(
            task=carrier,
            recipient=r,
            channel="email",
            address=f"{r.external_id}@example.com",
            state="deferred",
            not_before=due,
        )
        for r in crowd
    ]
    DeliveryRecord.objects.bulk_create(rows, batch_size=2000)
    return tasks, [r.pk for r in rows]


def test_two_release_due_runs_racing_release_each_row_once(transactional_db):
    assert connection.vendor == "postgresql"
    factories.published_template(channels=("email",))
    tasks, deferred = _make_due_work(n_tasks=60, n_deferred=1300)
    later = datetime.now(UTC) + timedelta(days=2)
    barrier = threading.Barrier(2)
    results: list[dict] = []
    errors: list[BaseException] = []

    def tick() -> None:
        from django.db import connections

        try:
            barrier.wait(timeout=10)
            results.append(scheduler.release_due(now=later))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sum(r.get("tasks", 0) for r in results) == len(tasks)
    assert sum(r.get("deliveries", 0) for r in results) == len(deferred)
    assert sum(r.get("deliveries_queued", 0) for r in results) == len(deferred)
    # Each task moved scheduled -> pushing exactly once.
    released = TaskEvent.objects.filter(
        task_id__in=tasks, from_state="scheduled", to_state="pushing"
    )
    assert released.count() == len(tasks)
    # (Workers left running by other tests may already be sending what was released.)
    assert not MessageTask.objects.filter(pk__in=tasks, state="scheduled").exists()
    assert not DeliveryRecord.objects.filter(pk__in=deferred, state="deferred").exists()


def test_sweep_stuck_requeues_rows_whose_lease_ran_out(setup, settings):
    task, _ = send_message(
        client=None,
        template="order_shipped",
        recipients=["u-1001", "u-1002"],
        params={"order_no": "W1"},
    )
    pipeline.plan_task(str(task.pk))
    ids = list(DeliveryRecord.objects.filter(task=task).values_list("id", flat=True))
    assert sorted(claim(ids)) == sorted(ids)  # a worker claimed them ... and died
    assert claim(ids) == []  # nobody else can take them while the lease holds
    lease = settings.MSGCENTER["SEND_LEASE_SECONDS"]
    assert scheduler.sweep_stuck()["requeued"] == 0
    later = datetime.now(UTC) + timedelta(seconds=lease + 1)
    assert scheduler.sweep_stuck(now=later) == {"requeued": 2, "were_sending": 2}
    assert set(DeliveryRecord.objects.filter(task=task).values_list("state", flat=True)) == {
        "queued"
    }
    assert scheduler.sweep_stuck(now=later)["requeued"] == 0  # a new lease was given
    assert sorted(claim(ids)) == sorted(ids)  # a live worker can now take them
