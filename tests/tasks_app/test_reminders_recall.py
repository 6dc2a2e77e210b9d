"""Read reminders (sent by the beat tick only while the in-app message is unread) and
recall (inboxes emptied, unsent skipped, other channels reported)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from channels_app.models import DeliveryRecord, Interaction
from channels_app.sending import send_chunk
from tasks_app import pipeline, scheduler
from tasks_app.models import MessageTask, ReadReminder
from tasks_app.services import send_message
from templates_app.services import create_template, publish_template
from tests import factories

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: no quiet hours


def send_queued() -> None:
    by_channel = defaultdict(list)
    for pk, channel in DeliveryRecord.objects.filter(state="queued").values_list("id", "channel"):
        by_channel[channel].append(pk)
    for channel, ids in by_channel.items():
        send_chunk(channel, ids)


@pytest.fixture
def reminded(db, smtp_server):
    t = create_template(
        code="approval",
        name="Approval",
        category="notification",
        params_schema={"type": "object"},
        remind_after_seconds=3600,
        remind_channel="email",
        contents=[
            {"channel": "inapp", "subject": "Please approve {{ doc }}", "body": "Doc {{ doc }}"},
            {
                "channel": "email",
                "subject": "Reminder: approve {{ doc }}",
                "body": "You have not read it yet.",
            },
        ],
    )
    publish_template(template=t)
    factories.recipients(2)
    factories.smtp_account(smtp_server)
    return smtp_server


def deliver_inapp(doc: str = "D-1") -> MessageTask:
    task, _ = send_message(
        client=None,
        template="approval",
        recipients=["u-1001", "u-1002"],
        params={"doc": doc},
        channels=["inapp"],
    )
    pipeline.plan_task(str(task.pk))
    send_queued()
    return MessageTask.objects.get(pk=task.pk)


def test_reminder_goes_out_after_t_only_to_who_did_not_read(api, reminded):
    with time_machine.travel(T0, tick=False):
        task = deliver_inapp()
    assert task.state == "completed"
    assert ReadReminder.objects.filter(state="waiting").count() == 2
    first = DeliveryRecord.objects.get(task=task, recipient__external_id="u-1001")
    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        api.post(f"/api/v1/inbox/u-1001/{first.pk}/read")
    with time_machine.travel(T0 + timedelta(minutes=59), tick=False):
        assert scheduler.release_due().get("reminders", 0) == 0
    with time_machine.travel(T0 + timedelta(minutes=60), tick=False):
        counts = scheduler.release_due()
        assert counts["reminders"] == 2
        send_queued()
    reminder = DeliveryRecord.objects.get(task=task, kind="reminder")
    second = DeliveryRecord.objects.get(task=task, recipient__external_id="u-1002", kind="primary")
    assert (reminder.channel, reminder.parent_id, reminder.state) == ("email", second.pk, "sent")
    assert [m.to for m in reminded.messages] == ["user2@example.com"]
    assert reminded.messages[0].subject == "Reminder: approve D-1"
    assert dict(ReadReminder.objects.values_list("delivery_id", "state")) == {
        first.pk: "read",
        second.pk: "sent",
    }
    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        assert scheduler.release_due().get("reminders", 0) == 0  # once
    assert MessageTask.objects.get(pk=task.pk).state == "completed"


def test_no_reminder_when_read_all_or_recalled(api, reminded):
    with time_machine.travel(T0, tick=False):
        deliver_inapp("read")
        api.post("/api/v1/inbox/u-1001/read-all")
        api.post("/api/v1/inbox/u-1002/read-all")
        recalled = deliver_inapp("recalled")
        api.post(f"/api/v1/messages/{recalled.pk}/recall")
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        assert scheduler.release_due()["reminders"] == 4
    assert sorted(ReadReminder.objects.values_list("state", flat=True)) == [
        "read",
        "read",
        "recalled",
        "recalled",
    ]
    assert not DeliveryRecord.objects.filter(kind="reminder").exists()
    assert reminded.messages == []


def test_reminder_without_content_for_its_channel_repeats_the_inapp_message(db, smtp_server):
    t = create_template(
        code="plain",
        name="Plain",
        category="notification",
        params_schema={"type": "object"},
        remind_after_seconds=60,
        remind_channel="email",
        contents=[{"channel": "inapp", "subject": "Hello", "body": "Body"}],
    )
    publish_template(template=t)
    factories.recipients(1)
    factories.smtp_account(smtp_server)
    with time_machine.travel(T0, tick=False):
        task, _ = send_message(client=None, template="plain", recipients=["u-1001"])
        pipeline.plan_task(str(task.pk))
        send_queued()
    with time_machine.travel(T0 + timedelta(minutes=2), tick=False):
        scheduler.release_due()
        send_queued()
    assert [(m.to, m.subject) for m in smtp_server.messages] == [("user1@example.com", "Hello")]


def test_recall_removes_inbox_items_and_reports_other_channels(api, smtp_server, db):
    factories.published_template(channels=("inapp", "email"))
    factories.recipients(2)
    factories.smtp_account(smtp_server)
    task, _ = send_message(
        client=None,
        template="order_shipped",
        recipients=["u-1001", "u-1002"],
        params={"order_no": "R1"},
    )
    pipeline.plan_task(str(task.pk))
    send_queued()
    assert api.get("/api/v1/inbox/u-1001").json()["unread"] == 1

    r = api.post(f"/api/v1/messages/{task.pk}/recall")
    assert r.status_code == 200
    body = r.json()
    assert body["state"] == "completed" and body["recalled"] == 2 and body["skipped"] == 0
    assert body["not_recalled"] == [
        {
            "channel": "email",
            "state": "sent",
            "count": 2,
            "reason": "already sent: this channel cannot take a message back",
        }
    ]
    assert api.get("/api/v1/inbox/u-1001").json() == {"unread": 0, "results": [], "next": None}
    assert Interaction.objects.filter(kind="recalled").count() == 2
    again = api.post(f"/api/v1/messages/{task.pk}/recall").json()
    assert again["recalled"] == 0 and again["skipped"] == 0


def test_recall_of_a_scheduled_message_skips_everything(api, db):
    factories.published_template(channels=("inapp", "email"))
    factories.recipients(2)
    r = api.post(
        "/api/v1/messages",
        {
            "template": "order_shipped",
            "recipients": ["u-1001", "u-1002"],
            "params": {"order_no": "R2"},
            "send_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
        format="json",
    )
    task_id = r.json()["id"]
    body = api.post(f"/api/v1/messages/{task_id}/recall").json()
    assert body == {
        "id": task_id,
        "state": "cancelled",
        "recalled": 0,
        "skipped": 4,
        "not_recalled": [],
    }
    assert set(DeliveryRecord.objects.filter(task_id=task_id).values_list("state", "reason")) == {
        ("skipped", "recalled")
    }
    assert api.post("/api/v1/messages/nope/recall").status_code == 404
