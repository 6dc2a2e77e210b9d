"""Inbox reads, and planning/sending internals run in-process (no worker)."""

from __future__ import annotations

import pytest

from channels_app.models import DeliveryRecord, Interaction
from channels_app.sending import claim, send_chunk
from tasks_app.models import MessageTask
from tasks_app.pipeline import plan_deliveries
from tasks_app.services import finish_task_if_done, send_message
from tests import factories

pytestmark = pytest.mark.django_db


def deliver_inapp(n_messages: int = 3, who: str = "u-1001") -> list[int]:
    """Create and fully deliver `n_messages` in-app messages to `who`, in-process."""
    ids = []
    for i in range(n_messages):
        task, _ = send_message(
            client=None,
            template="order_shipped",
            recipients=[who],
            params={"order_no": f"N{i}"},
            channels=["inapp"],
        )
        task.start()
        task.save()
        plan_deliveries(task)
        chunk = list(DeliveryRecord.objects.filter(task=task).values_list("id", flat=True))
        send_chunk("inapp", chunk)
        ids += chunk
    return ids


@pytest.fixture
def setup(db):
    factories.published_template()
    factories.recipients(2)


def test_inbox_lists_newest_first_with_unread_count(api, setup):
    deliver_inapp(3)
    body = api.get("/api/v1/inbox/u-1001").json()
    assert body["unread"] == 3
    assert [m["subject"] for m in body["results"]] == [
        "Order N2 shipped",
        "Order N1 shipped",
        "Order N0 shipped",
    ]
    assert set(body["results"][0]) >= {"id", "task", "subject", "body", "created_at", "read_at"}
    assert api.get("/api/v1/inbox/u-1002").json() == {"unread": 0, "results": [], "next": None}


def test_mark_read_is_idempotent_and_records_interaction(api, setup):
    ids = deliver_inapp(2)
    r = api.post(f"/api/v1/inbox/u-1001/{ids[0]}/read")
    assert r.status_code == 200 and r.json()["read_at"]
    again = api.post(f"/api/v1/inbox/u-1001/{ids[0]}/read")
    assert again.status_code == 200 and again.json()["read_at"] == r.json()["read_at"]
    assert Interaction.objects.filter(delivery_id=ids[0], kind="read").count() == 1
    body = api.get("/api/v1/inbox/u-1001?unread=true").json()
    assert body["unread"] == 1 and [m["id"] for m in body["results"]] == [str(ids[1])]


def test_read_all(api, setup):
    ids = deliver_inapp(3)
    api.post(f"/api/v1/inbox/u-1001/{ids[0]}/read")
    assert api.post("/api/v1/inbox/u-1001/read-all").json() == {"marked": 2}
    assert api.post("/api/v1/inbox/u-1001/read-all").json() == {"marked": 0}
    assert api.get("/api/v1/inbox/u-1001").json()["unread"] == 0
    assert Interaction.objects.filter(kind="read").count() == 3


def test_inbox_errors(api, setup):
    ids = deliver_inapp(1)
    r = api.post(f"/api/v1/inbox/u-1002/{ids[0]}/read")  # not theirs
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert api.post("/api/v1/inbox/u-1001/abc/read").status_code == 404
    r = api.get("/api/v1/inbox/ghost")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_claim_is_exclusive(setup):
    task, _ = send_message(
        client=None,
        template="order_shipped",
        recipients=["u-1001", "u-1002"],
        params={"order_no": "1"},
        channels=["email"],
    )
    task.start()
    task.save()
    plan_deliveries(task)
    ids = list(DeliveryRecord.objects.filter(task=task).values_list("id", flat=True))
    assert sorted(claim(ids)) == sorted(ids)
    assert claim(ids) == []
    assert send_chunk("email", ids) == {"claimed": 0}


def test_task_completes_exactly_once(setup):
    deliver_inapp(1)
    task = MessageTask.objects.get()
    assert task.state == "completed"
    assert finish_task_if_done(task.pk) is None
    assert list(task.events.values_list("to_state", flat=True)) == [
        "tasked",
        "pushing",
        "completed",
    ]


def test_task_with_only_no_address_fails(setup):
    from tasks_app.models import Recipient

    Recipient.objects.create(external_id="bare")
    task, _ = send_message(
        client=None,
        template="order_shipped",
        recipients=["bare"],
        params={"order_no": "1"},
        channels=["email"],
    )
    task.start()
    task.save()
    finish_task_if_done(task.pk)
    task.refresh_from_db()
    assert task.state == "failed"


def test_render_error_fails_the_delivery_permanently(setup):
    from templates_app.services import create_template, publish_template

    t = create_template(
        code="loose",
        name="Loose",
        params_schema={},
        contents=[{"channel": "inapp", "subject": "{{ missing }}", "body": "x"}],
    )
    publish_template(template=t)
    task, _ = send_message(client=None, template="loose", recipients=["u-1001"])
    task.start()
    task.save()
    plan_deliveries(task)
    d = DeliveryRecord.objects.get(task=task)
    send_chunk("inapp", [d.pk])
    d.refresh_from_db()
    assert d.state == "failed" and "missing" in d.error
    task.refresh_from_db()
    assert task.state == "failed"


def test_planning_is_batched(setup, django_assert_max_num_queries, settings):
    from tasks_app.models import Recipient

    settings.MSGCENTER = {**settings.MSGCENTER, "PLAN_BATCH_SIZE": 500}
    Recipient.objects.bulk_create(
        [Recipient(external_id=f"bulk-{i}", email=f"b{i}@x.test") for i in range(2000)]
    )
    task, _ = send_message(
        client=None,
        template="order_shipped",
        recipients=[f"bulk-{i}" for i in range(2000)],
        params={"order_no": "1"},
        channels=["inapp", "email"],
    )
    task.start()
    task.save()
    # 8 batches of 500: a bounded number of queries each, independent of the row count.
    # In-app rows are stored (delivered) by planning, email rows queue for a sender.
    with django_assert_max_num_queries(100):
        counts = plan_deliveries(task)
    assert counts == {"delivered": 2000, "queued": 2000}
    ids = list(
        DeliveryRecord.objects.filter(task=task, channel="email").values_list("id", flat=True)[:200]
    )
    with django_assert_max_num_queries(4):  # savepoint, SELECT ... SKIP LOCKED, UPDATE
        assert sorted(claim(ids)) == sorted(ids)
