"""POST/GET /api/v1/messages, cancel, and their errors (no workers: planning is not run)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from channels_app.models import DeliveryRecord
from tasks_app.models import MessageTask, Recipient, TaskEvent
from tests import factories
from tests.conftest import make_key

pytestmark = pytest.mark.django_db


def post(api, body, **kw):
    return api.post("/api/v1/messages", body, format="json", **kw)


@pytest.fixture
def setup(db):
    factories.published_template()
    factories.recipients(3)


def error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_accepts_and_creates_task_with_deliveries(api, setup):
    r = post(
        api,
        {
            "template": "order_shipped",
            "recipients": [
                "u-1001",
                {
                    "external_id": "u-2000",
                    "email": "new@example.com",
                    "name": "New",
                    "params": {"order_no": "B7"},
                },
            ],
            "params": {"order_no": "A123"},
            "channels": ["inapp", "email"],
        },
    )
    assert r.status_code == 202, r.json()
    body = r.json()
    assert set(body) >= {
        "id",
        "state",
        "template",
        "template_version",
        "recipients",
        "deliveries",
        "created_at",
    }
    assert body["state"] == "tasked" and body["template_version"] == 1
    assert body["recipients"] == 2 and body["deliveries"] == 4
    # the object recipient was upserted
    assert Recipient.objects.get(external_id="u-2000").email == "new@example.com"
    task = MessageTask.objects.get(pk=body["id"])
    assert task.recipient_params == {"u-2000": {"order_no": "B7"}}
    assert list(TaskEvent.objects.filter(task=task).values_list("from_state", "to_state")) == [
        ("initialized", "tasked")
    ]
    assert DeliveryRecord.objects.filter(task=task, state="pending").count() == 4


def test_channels_default_to_every_content(api, setup):
    r = post(
        api, {"template": "order_shipped", "recipients": ["u-1001"], "params": {"order_no": "1"}}
    )
    assert r.status_code == 202
    assert r.json()["deliveries"] == 3  # inapp + email + one group webhook delivery


def test_recipient_without_address_is_skipped_no_address(api, setup):
    Recipient.objects.create(external_id="no-mail")
    r = post(
        api,
        {
            "template": "order_shipped",
            "recipients": ["no-mail"],
            "params": {"order_no": "1"},
            "channels": ["email", "inapp"],
        },
    )
    d = DeliveryRecord.objects.get(task_id=r.json()["id"], channel="email")
    assert (d.state, d.reason) == ("skipped", "no_address")
    assert DeliveryRecord.objects.get(task_id=r.json()["id"], channel="inapp").state == "pending"


def test_send_at_in_future_schedules(api, setup):
    r = post(
        api,
        {
            "template": "order_shipped",
            "recipients": ["u-1001"],
            "params": {"order_no": "1"},
            "send_at": "2099-01-01T09:00:00+08:00",
        },
    )
    assert r.status_code == 202 and r.json()["state"] == "scheduled"
    assert r.json()["send_at"].startswith("2099-01-01T01:00:00")


def test_idempotent_replay_same_body_returns_same_task(api, setup):
    body = {
        "template": "order_shipped",
        "recipients": ["u-1001"],
        "params": {"order_no": "1"},
        "idempotency_key": "order-1",
    }
    first = post(api, body)
    again = post(api, body)
    assert first.status_code == 202 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert MessageTask.objects.count() == 1


def test_idempotency_key_header_and_conflict(api, setup):
    body = {"template": "order_shipped", "recipients": ["u-1001"], "params": {"order_no": "1"}}
    first = post(api, body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert post(api, body, HTTP_IDEMPOTENCY_KEY="k-1").json()["id"] == first.json()["id"]
    other = dict(body, params={"order_no": "2"})
    err = error(post(api, other, HTTP_IDEMPOTENCY_KEY="k-1"), 409, "idempotency_conflict")
    assert err["details"]["task"] == first.json()["id"]


def test_idempotency_keys_are_scoped_per_client(api, setup):
    body = {
        "template": "order_shipped",
        "recipients": ["u-1001"],
        "params": {"order_no": "1"},
        "idempotency_key": "shared",
    }
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key('other-service')}")
    assert post(api, body).json()["id"] != post(other, body).json()["id"]


def test_idempotency_key_expires(api, setup, settings):
    from datetime import timedelta

    from django.utils import timezone

    body = {
        "template": "order_shipped",
        "recipients": ["u-1001"],
        "params": {"order_no": "1"},
        "idempotency_key": "old",
    }
    first = post(api, body).json()["id"]
    MessageTask.objects.filter(pk=first).update(created_at=timezone.now() - timedelta(hours=49))
    second = post(api, body)
    assert second.status_code == 202 and second.json()["id"] != first


def test_invalid_params_names_recipient_and_path(api, setup):
    r = post(
        api,
        {
            "template": "order_shipped",
            "recipients": ["u-1001", {"external_id": "u-1002", "params": {"order_no": 5}}],
            "params": {"order_no": "A1"},
        },
    )
    err = error(r, 400, "invalid_params")
    assert err["details"]["errors"] == [
        {"recipient": "u-1002", "path": "order_no", "message": "5 is not of type 'string'"}
    ]
    assert "u-1002" in err["message"]
    r = post(api, {"template": "order_shipped", "recipients": ["u-1001"], "params": {}})
    err = error(r, 400, "invalid_params")
    assert err["details"]["errors"][0]["path"] == "order_no"
    assert MessageTask.objects.count() == 0


def test_unknown_recipients_404_names_them(api, setup):
    err = error(
        post(
            api,
            {
                "template": "order_shipped",
                "recipients": ["u-1001", "ghost", "nobody"],
                "params": {"order_no": "1"},
            },
        ),
        404,
        "not_found",
    )
    assert err["details"]["recipients"] == ["ghost", "nobody"]
    assert "ghost" in err["message"]
    assert MessageTask.objects.count() == 0


def test_unknown_template_and_unpublished(api, setup):
    error(post(api, {"template": "nope", "recipients": ["u-1001"]}), 404, "template_not_found")
    from templates_app.services import create_template

    create_template(
        code="draft_only",
        name="Draft",
        contents=[{"channel": "inapp", "subject": "x", "body": "y"}],
    )
    error(
        post(api, {"template": "draft_only", "recipients": ["u-1001"]}),
        409,
        "template_not_published",
    )


def test_unknown_channel_and_channel_without_content(api, setup):
    err = error(
        post(
            api,
            {
                "template": "order_shipped",
                "recipients": ["u-1001"],
                "params": {"order_no": "1"},
                "channels": ["pigeon"],
            },
        ),
        400,
        "invalid_request",
    )
    assert err["details"]["unknown"] == ["pigeon"]
    err = error(
        post(
            api,
            {
                "template": "order_shipped",
                "recipients": ["u-1001"],
                "params": {"order_no": "1"},
                "channels": ["sms"],
            },
        ),
        400,
        "invalid_request",
    )
    assert err["details"]["missing"] == ["sms"]


def test_bad_shapes_are_400(api, setup):
    error(
        api.post("/api/v1/messages", "{not json", content_type="application/json"),
        400,
        "invalid_request",
    )
    error(post(api, {"recipients": ["u-1001"]}), 400, "invalid_request")
    error(post(api, {"template": "order_shipped", "recipients": []}), 400, "invalid_request")
    error(post(api, {"template": "order_shipped", "recipients": [42]}), 400, "invalid_request")
    error(post(api, {"template": "order_shipped", "recipients": "u-1001"}), 400, "invalid_request")
    error(
        post(api, {"template": "order_shipped", "recipients": ["u-1001"], "params": [1]}),
        400,
        "invalid_request",
    )
    error(
        post(api, {"template": "order_shipped", "recipients": ["u-1001"], "send_at": "tomorrow"}),
        400,
        "invalid_request",
    )
    error(
        post(api, {"template": "order_shipped", "recipients": ["u-1001"], "priority": "urgent!"}),
        400,
        "invalid_request",
    )
    error(post(api, [1, 2]), 400, "invalid_request")
    error(
        post(
            api,
            {
                "template": "order_shipped",
                "recipients": [{"external_id": "x", "timezone": "Mars/Base"}],
            },
        ),
        400,
        "invalid_request",
    )


def test_too_many_recipients(api, setup, settings):
    settings.MSGCENTER = {**settings.MSGCENTER, "MAX_RECIPIENTS_PER_REQUEST": 5}
    err = error(
        post(api, {"template": "order_shipped", "recipients": [f"u-{i}" for i in range(6)]}),
        400,
        "invalid_request",
    )
    assert err["details"] == {"field": "recipients", "max": 5, "given": 6}
    assert "at most 5" in err["message"]


def test_auth_errors(anon, api_send_only, setup):
    error(post(anon, {"template": "order_shipped", "recipients": ["u-1001"]}), 401, "unauthorized")
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer mc_nope_nope")
    error(post(bad, {"template": "order_shipped", "recipients": ["u-1001"]}), 401, "unauthorized")
    manage_only = APIClient()
    manage_only.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key('ops', ['manage'])}")
    error(
        post(manage_only, {"template": "order_shipped", "recipients": ["u-1001"]}), 403, "forbidden"
    )
    r = post(
        api_send_only,
        {"template": "order_shipped", "recipients": ["u-1001"], "params": {"order_no": "1"}},
    )
    assert r.status_code == 202


def test_get_message_counts_and_events(api, setup):
    task_id = post(
        api,
        {
            "template": "order_shipped",
            "recipients": ["u-1001", "u-1002"],
            "params": {"order_no": "1"},
            "channels": ["inapp"],
        },
    ).json()["id"]
    body = api.get(f"/api/v1/messages/{task_id}").json()
    assert body["counts"] == {
        "pending": 2,
        "deferred": 0,
        "queued": 0,
        "sending": 0,
        "sent": 0,
        "delivered": 0,
        "failed": 0,
        "skipped": 0,
    }
    assert body["events"][0]["from"] == "initialized" and body["events"][0]["to"] == "tasked"
    assert body["send_at"] is None
    error(api.get("/api/v1/messages/not-a-uuid"), 404, "not_found")
    error(api.get("/api/v1/messages/00000000-0000-0000-0000-000000000000"), 404, "not_found")


def test_deliveries_are_paginated(api, setup):
    factories.recipients(25, prefix="p-")
    task_id = post(
        api,
        {
            "template": "order_shipped",
            "recipients": [f"p-{1000 + i}" for i in range(1, 26)],
            "params": {"order_no": "1"},
            "channels": ["inapp"],
        },
    ).json()["id"]
    page = api.get(f"/api/v1/messages/{task_id}/deliveries?page_size=10").json()
    assert len(page["results"]) == 10 and page["next"]
    seen = [d["id"] for d in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += [d["id"] for d in page["results"]]
    assert len(seen) == len(set(seen)) == 25
    item = page["results"][0]
    assert set(item) >= {
        "id",
        "recipient",
        "channel",
        "state",
        "reason",
        "address",
        "attempts",
        "error",
        "sent_at",
        "delivered_at",
        "read_at",
    }
    error(
        api.get("/api/v1/messages/00000000-0000-0000-0000-000000000000/deliveries"),
        404,
        "not_found",
    )


def test_cancel_skips_unsent_and_refuses_twice(api, setup):
    from channels_app.transitions import bulk_transition

    task_id = post(
        api,
        {
            "template": "order_shipped",
            "recipients": ["u-1001", "u-1002"],
            "params": {"order_no": "1"},
            "channels": ["inapp"],
        },
    ).json()["id"]
    task = MessageTask.objects.get(pk=task_id)
    task.start(by="test")
    task.save()
    first = DeliveryRecord.objects.filter(task=task).order_by("id").first()
    # one delivery already went out
    for method in (DeliveryRecord.enqueue, DeliveryRecord.claim, DeliveryRecord.mark_sent):
        bulk_transition(DeliveryRecord.objects.filter(pk=first.pk), method)
    r = api.post(f"/api/v1/messages/{task_id}/cancel")
    assert r.status_code == 200 and r.json() == {"id": task_id, "state": "cancelled"}
    states = dict(DeliveryRecord.objects.filter(task=task).values_list("id", "state"))
    assert states[first.pk] == "sent"
    others = DeliveryRecord.objects.filter(task=task).exclude(pk=first.pk)
    assert set(others.values_list("state", "reason")) == {("skipped", "cancelled")}
    err = error(api.post(f"/api/v1/messages/{task_id}/cancel"), 409, "invalid_transition")
    assert err["details"]["state"] == "cancelled"
    events = list(TaskEvent.objects.filter(task=task).values_list("to_state", flat=True))
    assert events == ["tasked", "pushing", "cancelled"]


def test_fan_out_is_batched(api, setup, django_assert_max_num_queries):
    from tasks_app.services import send_message

    Recipient.objects.bulk_create(
        [Recipient(external_id=f"bulk-{i}", email=f"b{i}@x.test") for i in range(5000)]
    )
    ids = [f"bulk-{i}" for i in range(5000)]
    with django_assert_max_num_queries(25):
        task, _ = send_message(
            client=None,
            template="order_shipped",
            recipients=ids,
            params={"order_no": "1"},
            channels=["inapp", "email"],
        )
    assert DeliveryRecord.objects.filter(task=task).count() == 10000
