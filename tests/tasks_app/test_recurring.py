"""Recurring sends: the API, the django-celery-beat PeriodicTask kept in step, crontab
occurrences in a timezone, and one task per run whatever fires it how often."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from tasks_app import recurring
from tasks_app.models import MessageTask, RecurringSend
from tests import factories

pytestmark = pytest.mark.django_db


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def setup(db):
    factories.published_template(channels=("inapp",))
    factories.recipients(2)


BODY = {
    "name": "weekday digest",
    "template": "order_shipped",
    "audience": {"recipients": ["u-1001", "u-1002"]},
    "params": {"order_no": "DIGEST"},
    "channels": ["inapp"],
    "crontab": "0 9 * * 1-5",
    "timezone": "Asia/Shanghai",
}


def test_create_update_disable_delete_keep_the_periodic_task_in_step(api, setup):
    r = api.post("/api/v1/recurring-sends", BODY, format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["crontab"] == "0 9 * * 1-5" and body["timezone"] == "Asia/Shanghai"
    assert body["next_run_at"] is not None and body["last_run_at"] is None
    rs = RecurringSend.objects.get(pk=body["id"])
    pt = PeriodicTask.objects.get(pk=body["periodic_task"])
    assert pt.task == "tasks.run_recurring_send" and pt.enabled and pt.queue == "dispatch"
    assert json.loads(pt.kwargs) == {"recurring_send_id": rs.pk}
    cron = pt.crontab
    assert (cron.minute, cron.hour, cron.day_of_week, str(cron.timezone)) == (
        "0",
        "9",
        "1-5",
        "Asia/Shanghai",
    )
    assert rs.client is not None  # runs are attributed to the API client that made it

    r = api.patch(f"/api/v1/recurring-sends/{rs.pk}", {"crontab": "*/15 8-18 * * *"}, format="json")
    assert r.status_code == 200 and r.json()["crontab"] == "*/15 8-18 * * *"
    pt.refresh_from_db()
    assert (pt.crontab.minute, pt.crontab.hour) == ("*/15", "8-18")
    assert not CrontabSchedule.objects.filter(pk=cron.pk).exists()  # the old one is gone

    r = api.patch(f"/api/v1/recurring-sends/{rs.pk}", {"enabled": False}, format="json")
    assert r.json()["enabled"] is False and r.json()["next_run_at"] is None
    pt.refresh_from_db()
    assert pt.enabled is False

    listed = api.get("/api/v1/recurring-sends").json()
    assert [x["name"] for x in listed["results"]] == ["weekday digest"]
    assert api.delete(f"/api/v1/recurring-sends/{rs.pk}").status_code == 204
    assert not PeriodicTask.objects.filter(pk=pt.pk).exists()
    assert not CrontabSchedule.objects.exists()
    assert api.get(f"/api/v1/recurring-sends/{rs.pk}").status_code == 404


def test_admin_style_save_creates_the_periodic_task_too(setup):
    from templates_app.models import MessageTemplate

    rs = RecurringSend.objects.create(
        name="from admin",
        template=MessageTemplate.objects.get(),
        audience={"tag": "vip"},
        params={"order_no": "A"},
        minute="30",
        hour="7",
        timezone="Europe/Berlin",
    )
    rs.refresh_from_db()
    assert rs.periodic_task.crontab.hour == "7"
    assert str(rs.periodic_task.crontab.timezone) == "Europe/Berlin"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"crontab": "61 * * * *"}, 400, "invalid_request"),
        ({"crontab": "* * *"}, 400, "invalid_request"),
        ({"timezone": "Mars/Base"}, 400, "invalid_request"),
        ({"audience": {"who": "everyone"}}, 400, "invalid_request"),
        ({"audience": {"recipients": "u-1001"}}, 400, "invalid_request"),
        ({"params": {}}, 400, "invalid_params"),
        ({"channels": ["email"]}, 400, "invalid_request"),
        ({"template": "nope"}, 404, "template_not_found"),
    ],
)
def test_bad_recurring_sends_are_refused(api, setup, change, status, code):
    r = api.post("/api/v1/recurring-sends", {**BODY, **change}, format="json")
    assert r.status_code == status, r.json()
    assert r.json()["error"]["code"] == code
    assert not PeriodicTask.objects.exists()


def test_recurring_sends_need_the_manage_scope(api_send_only, setup):
    assert api_send_only.get("/api/v1/recurring-sends").status_code == 403


def test_name_is_unique(api, setup):
    api.post("/api/v1/recurring-sends", BODY, format="json")
    r = api.post("/api/v1/recurring-sends", BODY, format="json")
    assert r.status_code == 409


def test_occurrences_in_the_sends_timezone():
    fields = recurring.parse_crontab("0 9 * * 1-5")
    # Friday 2026-05-08 09:00 in Shanghai is 01:00 UTC.
    assert recurring.previous_occurrence(fields, "Asia/Shanghai", utc(2026, 5, 8, 1, 0)) == utc(
        2026, 5, 8, 1, 0
    )
    assert recurring.previous_occurrence(fields, "Asia/Shanghai", utc(2026, 5, 8, 0, 59)) == utc(
        2026, 5, 7, 1, 0
    )
    # Saturday: the next run is Monday 09:00 local.
    assert recurring.next_occurrence(fields, "Asia/Shanghai", utc(2026, 5, 9, 3, 0)) == utc(
        2026, 5, 11, 1, 0
    )
    every_minute = recurring.parse_crontab("* * * * *")
    assert recurring.previous_occurrence(every_minute, "UTC", utc(2026, 5, 9, 3, 7, 42)) == utc(
        2026, 5, 9, 3, 7
    )
    # 02:30 does not exist in New York on 2026-03-08: that day has no run.
    at_half_two = recurring.parse_crontab("30 2 * * *")
    assert recurring.next_occurrence(at_half_two, "America/New_York", utc(2026, 3, 8, 0)) == utc(
        2026, 3, 9, 6, 30
    )
    with pytest.raises(ValueError):
        recurring.parse_crontab("0 25 * * *")


def test_one_task_per_run_however_often_it_fires(setup):
    rs = recurring.create_recurring_send(**{**BODY, "crontab": "* * * * *", "timezone": "UTC"})
    first = recurring.run(rs.pk, scheduled_for=utc(2026, 5, 10, 9, 0, 0, 120000))
    # The same occurrence fired again (a beat restart, two beats) a few seconds later.
    again = recurring.run(rs.pk, scheduled_for=utc(2026, 5, 10, 9, 0, 7))
    assert first["created"] is True and again["created"] is False
    assert again["task"] == first["task"]
    assert first["key"] == f"recurring-{rs.pk}-20260510T0900"
    # Beat firing a hair early (it wakes ~10 ms ahead) still names the coming run ...
    early = recurring.run(rs.pk, scheduled_for=utc(2026, 5, 10, 9, 0, 59, 600000))
    assert early["created"] is True and early["task"] != first["task"]
    assert early["key"] == f"recurring-{rs.pk}-20260510T0901"
    # ... so the same run fired on time is the same task.
    nxt = recurring.run(rs.pk, scheduled_for=utc(2026, 5, 10, 9, 1, 0, 300000))
    assert nxt["created"] is False and nxt["task"] == early["task"]
    assert MessageTask.objects.count() == 2
    task = MessageTask.objects.get(pk=first["task"])
    assert task.created_by == "recurring:weekday digest" and task.recipient_count == 2
    rs.refresh_from_db()
    assert rs.last_run_at == utc(2026, 5, 10, 9, 1)


def test_runs_of_tag_audiences_and_disabled_sends(setup):
    from tasks_app.services import upsert_recipient

    upsert_recipient(external_id="v-1", tags=["vip"])
    rs = recurring.create_recurring_send(**{**BODY, "audience": {"tag": "vip"}})
    out = recurring.run(rs.pk, scheduled_for=datetime.now(UTC))
    task = MessageTask.objects.get(pk=out["task"])
    assert task.audience["tag"] == "vip" and task.state == "tasked"  # fan-out on commit
    recurring.update_recurring_send(recurring_send=rs, enabled=False)
    assert recurring.run(rs.pk, scheduled_for=datetime.now(UTC) + timedelta(days=1)) == {
        "skipped": "missing or disabled"
    }


def test_a_run_of_an_unpublished_template_is_logged_not_raised(setup):
    from templates_app.models import MessageTemplate

    rs = recurring.create_recurring_send(**BODY)
    MessageTemplate.objects.update(status="archived")
    out = recurring.run(rs.pk, scheduled_for=utc(2026, 5, 11, 1, 0))
    assert "error" in out and out["key"].endswith("20260511T0900")
    assert MessageTask.objects.count() == 0
    # It can still be switched off, though its template cannot be sent any more.
    recurring.update_recurring_send(recurring_send=rs, enabled=False)
    rs.refresh_from_db()
    assert rs.enabled is False and rs.periodic_task.enabled is False
