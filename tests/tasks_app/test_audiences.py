"""Audiences: {"tag": ...} and {"all": true} fanned out by a worker in chunks, streaming
recipient ids (keyset pagination), resumable, with memory that does not grow with the
audience."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_app.models import DeliveryRecord
from tasks_app import audiences, pipeline
from tasks_app.models import MessageTask
from tasks_app.services import upsert_recipient
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def crowd(db):
    factories.published_template(channels=("inapp", "email", "webhook"))
    for i in range(1, 8):
        tags = ["vip"] if i % 2 else ["regular"]
        upsert_recipient(external_id=f"a-{i}", name=f"A {i}", email=f"a{i}@example.com", tags=tags)


def post(api, recipients, **extra):
    return api.post(
        "/api/v1/messages",
        {
            "template": "order_shipped",
            "recipients": recipients,
            "params": {"order_no": "V1"},
            **extra,
        },
        format="json",
    )


def test_tag_audience_is_fanned_out_in_chunks_and_stays_tasked_until_done(api, crowd):
    r = post(api, {"tag": "vip"}, channels=["inapp", "webhook"])
    assert r.status_code == 202, r.json()
    body = r.json()
    assert body["state"] == "tasked" and body["deliveries"] == 0
    task_id = body["id"]

    # A worker that stops after two chunks of two recipients (it died, say) ...
    assert audiences.fan_out(task_id, chunk=2, max_chunks=2) == {"chunks": 2}
    task = MessageTask.objects.get(pk=task_id)
    assert task.state == "tasked" and task.recipient_count == 4  # a-1, a-3 | a-5, a-7
    assert not DeliveryRecord.objects.filter(task_id=task_id, channel="webhook").exists()
    # ... and the job run again resumes at the saved cursor: nobody twice.
    result = audiences.fan_out(task_id, chunk=2)
    assert result["recipients"] == 4
    rows = DeliveryRecord.objects.filter(task_id=task_id)
    assert sorted(
        rows.filter(channel="inapp").values_list("recipient__external_id", flat=True)
    ) == ["a-1", "a-3", "a-5", "a-7"]
    group = rows.get(channel="webhook")  # one post for the group, mentioning the audience
    assert [m["external_id"] for m in group.mentions] == ["a-1", "a-3", "a-5", "a-7"]
    task = MessageTask.objects.get(pk=task_id)
    assert (task.recipient_count, task.delivery_count) == (4, 5)
    assert task.audience["done"] is True
    assert audiences.fan_out(task_id) == {"chunks": 0}  # a duplicate job does nothing

    pipeline.plan_task(task_id)  # enqueued on commit of the last chunk
    # In-app rows are stored, so delivered, by planning; the webhook post waits queued.
    assert set(rows.values_list("channel", "state")) == {
        ("inapp", "delivered"),
        ("webhook", "queued"),
    }
    assert MessageTask.objects.get(pk=task_id).state == "pushing"


def test_all_audience_with_send_at_is_scheduled_after_fan_out(api, crowd):
    send_at = datetime.now(UTC) + timedelta(hours=2)
    r = post(api, {"all": True}, channels=["inapp"], send_at=send_at.isoformat())
    task_id = r.json()["id"]
    assert r.json()["state"] == "tasked"
    audiences.fan_out(task_id)
    task = MessageTask.objects.get(pk=task_id)
    assert task.state == "scheduled" and task.recipient_count == 7
    assert [(e.from_state, e.to_state) for e in task.events.all()] == [
        ("initialized", "tasked"),
        ("tasked", "scheduled"),
    ]


@pytest.mark.parametrize(
    "audience",
    [{"tag": ""}, {"tag": 3}, {"all": False}, {"everyone": True}, {"tag": "vip", "all": True}],
)
def test_bad_audiences_are_400(api, crowd, audience):
    r = post(api, audience)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_request"


def test_audience_params_are_checked_before_accepting(api, crowd):
    r = api.post(
        "/api/v1/messages",
        {"template": "order_shipped", "recipients": {"all": True}},
        format="json",
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_params"


def test_cancel_during_fan_out_stops_it(api, crowd):
    task_id = post(api, {"all": True}, channels=["inapp"]).json()["id"]
    audiences.fan_out(task_id, chunk=2, max_chunks=1)
    assert api.post(f"/api/v1/messages/{task_id}/cancel").json()["state"] == "cancelled"
    assert audiences.fan_out(task_id, chunk=2) == {"chunks": 0}
    assert DeliveryRecord.objects.filter(task_id=task_id).count() == 2


def test_large_audience_is_streamed_by_keyset_pages(api, db):
    """Every read of recipients is one bounded page after a cursor: memory holds one
    chunk whatever the audience size (docs/scheduling.md has the 100,000 measurement)."""
    factories.published_template(channels=("inapp",))
    n, chunk = 12_000, 2_500
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO tasks_app_recipient (external_id, name, email, phone, locale, timezone,"
            " addresses, tags, created_at, updated_at) SELECT 'm-' || g, '', '', '', '', '',"
            " '{}'::jsonb, CASE WHEN g %% 4 = 0 THEN '[\"vip\"]' ELSE '[]' END::jsonb, now(),"
            " now() FROM generate_series(1, %s) g",
            [n],
        )
    task_id = post(api, {"tag": "vip"}).json()["id"]
    with CaptureQueriesContext(connection) as queries:
        result = audiences.fan_out(task_id, chunk=chunk)
    assert result["recipients"] == n // 4
    assert DeliveryRecord.objects.filter(task_id=task_id).count() == n // 4
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('SELECT "tasks_app_recipient"')
    ]
    assert len(reads) == -(-(n // 4) // chunk) + (1 if (n // 4) % chunk == 0 else 0)
    for sql in reads:
        assert f"LIMIT {chunk}" in sql and '"tasks_app_recipient"."id" >' in sql
        assert "@>" in sql  # the tag is matched by the database (GIN index), not here
