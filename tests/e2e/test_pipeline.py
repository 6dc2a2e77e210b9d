"""The send pipeline end to end: API -> planning -> real Celery workers -> real SMTP and
HTTP servers -> results and task completion."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from channels_app.models import DeliveryRecord
from tasks_app.models import MessageTask
from tests import factories
from tests.servers import Reply, wait_for

pytestmark = [pytest.mark.e2e]


def task_state(task_id) -> str:
    return MessageTask.objects.get(pk=task_id).state


def wait_task(task_id, states=("completed", "failed", "cancelled"), timeout=30) -> MessageTask:
    wait_for(
        lambda: task_state(task_id) in states,
        timeout=timeout,
        message=f"task {task_id} to reach {states}",
    )
    return MessageTask.objects.get(pk=task_id)


def verify_signature(secret: str, req) -> bool:
    ts = req.headers["X-Msgcenter-Timestamp"]
    expected = (
        "sha256="
        + hmac.new(secret.encode(), ts.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    )
    return hmac.compare_digest(expected, req.headers["X-Msgcenter-Signature"])


def test_three_recipients_over_inapp_email_webhook(workers, api, smtp_server, http_server):
    factories.published_template()
    factories.recipients(3)
    factories.smtp_account(smtp_server)
    factories.webhook_account(http_server, secret="topsecret")

    response = api.post(
        "/api/v1/messages",
        {
            "template": "order_shipped",
            "recipients": [
                "u-1001",
                "u-1002",
                {"external_id": "u-1003", "params": {"order_no": "B7"}},
            ],
            "params": {"order_no": "A123"},
            "channels": ["inapp", "email", "webhook"],
        },
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["recipients"] == 3 and body["deliveries"] == 7  # 3 inapp + 3 email + 1 webhook

    task = wait_task(body["id"])
    assert task.state == "completed"
    states = sorted(DeliveryRecord.objects.filter(task=task).values_list("channel", "state"))
    assert states == sorted(
        [("inapp", "delivered")] * 3 + [("email", "sent")] * 3 + [("webhook", "sent")]
    )

    # Exactly the expected mails, each rendered with its recipient's own params.
    wait_for(lambda: len(smtp_server.messages) >= 3)
    mails = {m.rcpt_tos[0]: m for m in smtp_server.messages}
    assert len(smtp_server.messages) == 3
    assert set(mails) == {"user1@example.com", "user2@example.com", "user3@example.com"}
    assert mails["user1@example.com"].subject == "Order A123 shipped"
    assert mails["user3@example.com"].subject == "Order B7 shipped"
    assert "<b>B7</b>" in mails["user3@example.com"].part("text/html")
    assert "Hi User 3" in mails["user3@example.com"].part("text/plain")
    email_rows = DeliveryRecord.objects.filter(task=task, channel="email")
    msg_ids = {m.message["Message-ID"] for m in smtp_server.messages}
    assert {d.provider_message_id for d in email_rows} == msg_ids

    # The webhook receiver got one signed post mentioning every recipient.
    assert len(http_server.requests) == 1
    req = http_server.requests[0]
    assert verify_signature("topsecret", req)
    payload = req.json()
    assert payload["task"] == body["id"] and payload["template"] == "order_shipped"
    assert payload["recipients"] == ["u-1001", "u-1002", "u-1003"]

    # In-app: each inbox has its own rendered message.
    inbox = api.get("/api/v1/inbox/u-1003").json()
    assert inbox["unread"] == 1
    assert inbox["results"][0]["subject"] == "Order B7 shipped"

    detail = api.get(f"/api/v1/messages/{body['id']}").json()
    assert detail["state"] == "completed"
    assert detail["counts"]["delivered"] == 3 and detail["counts"]["sent"] == 4
    assert [(e["from"], e["to"]) for e in detail["events"]] == [
        ("initialized", "tasked"),
        ("tasked", "pushing"),
        ("pushing", "completed"),
    ]


def test_webhook_500_then_200_is_retried_and_sent_once(workers, api, http_server):
    factories.published_template(channels=("webhook",))
    factories.recipients(1)
    factories.webhook_account(http_server)
    http_server.queue(Reply(500, {"error": "boom"}))

    response = api.post(
        "/api/v1/messages",
        {"template": "order_shipped", "recipients": ["u-1001"], "params": {"order_no": "A1"}},
        format="json",
    )
    task = wait_task(response.json()["id"])
    assert task.state == "completed"
    d = DeliveryRecord.objects.get(task=task)
    assert d.state == "sent" and d.attempts == 2
    assert len(http_server.requests) == 2
    assert [a["ok"] for a in d.attempt_log] == [False, True]
    assert "HTTP 500" in d.attempt_log[0]["error"]


def test_webhook_400_fails_permanently_and_task_fails(workers, api, http_server):
    factories.published_template(channels=("webhook",))
    factories.recipients(1)
    factories.webhook_account(http_server)
    http_server.default = Reply(400, {"error": "bad payload"})

    response = api.post(
        "/api/v1/messages",
        {"template": "order_shipped", "recipients": ["u-1001"], "params": {"order_no": "A1"}},
        format="json",
    )
    task = wait_task(response.json()["id"])
    assert task.state == "failed"
    d = DeliveryRecord.objects.get(task=task)
    assert d.state == "failed" and d.attempts == 1
    assert "HTTP 400" in d.error and "bad payload" in d.error
    assert len(http_server.requests) == 1
    deliveries = api.get(f"/api/v1/messages/{task.pk}/deliveries").json()
    assert deliveries["results"][0]["error"] == d.error


def test_same_chunk_enqueued_many_times_to_two_workers_sends_each_mail_once(workers, smtp_server):
    from datetime import timedelta

    from django.utils import timezone

    from channels_app.sending import enqueue_ids
    from tasks_app.pipeline import plan_deliveries
    from tasks_app.services import send_message

    factories.published_template(channels=("email",))
    people = factories.recipients(40)
    factories.smtp_account(smtp_server)
    # Scheduled far ahead so that no worker plans it; the test plans it itself.
    task, _ = send_message(
        client=None,
        template="order_shipped",
        recipients=[p.external_id for p in people],
        params={"order_no": "R1"},
        send_at=timezone.now() + timedelta(days=1),
    )
    task.release(by="test")
    task.save(update_fields=["state"])
    plan_deliveries(task)  # enqueues the chunk once, on commit
    ids = list(DeliveryRecord.objects.filter(task=task).values_list("id", flat=True))
    for _ in range(3):  # ... and three more copies of the same chunk
        enqueue_ids("email", ids)

    task = wait_task(task.pk)
    assert task.state == "completed"
    wait_for(lambda: len(smtp_server.messages) >= 40)
    import time

    time.sleep(1.0)  # would-be duplicates have had time to arrive
    rcpts = smtp_server.recipients()
    assert len(rcpts) == 40 and len(set(rcpts)) == 40
    assert set(DeliveryRecord.objects.filter(task=task).values_list("state", "attempts")) == {
        ("sent", 1)
    }
