"""The operators' console beyond plain CRUD: retry / release / send-test operations, the
live preview, version diffs, trace by recipient, the attempts of a failed delivery, the
delivery dashboard and the staff groups. Real PostgreSQL, Redis and loopback servers;
planning and sending run in-process where a test needs a message to really go out."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from channels_app import rollup
from channels_app.models import (
    ChannelAccount,
    DeliveryKind,
    DeliveryRecord,
    DeliveryState,
    Interaction,
    InteractionKind,
)
from channels_app.sending import send_chunk
from msgcenter import dashboard
from msgcenter.errors import APIError
from tasks_app.models import MessageTask, QuietHours, Recipient, TaskState
from tasks_app.operations import release_deferred_now, retry_failed, send_test
from tasks_app.pipeline import plan_deliveries
from tasks_app.services import finish_task_if_done, send_message
from templates_app.models import MessageTemplate, TemplateVersion
from templates_app.services import publish_template, update_template
from tests import factories
from tests.console_fixtures import ensure_console_groups
from tests.servers import Reply
from tests.test_admin import flash, form_data, url

pytestmark = pytest.mark.django_db


def run_in_process(task: MessageTask) -> None:
    """What the workers do, in this process: start, plan, send every queued row."""
    task.refresh_from_db()
    if task.state == TaskState.TASKED:
        task.start(by="planner")
        task.save()
    plan_deliveries(task)
    by_channel: dict[str, list[int]] = {}
    for pk, channel in DeliveryRecord.objects.filter(
        task=task, state=DeliveryState.QUEUED
    ).values_list("id", "channel"):
        by_channel.setdefault(channel, []).append(pk)
    for channel, ids in by_channel.items():
        send_chunk(channel, ids)
    finish_task_if_done(task.pk)
    task.refresh_from_db()


def webhook_task(http_server, status: int = 400) -> MessageTask:
    factories.published_template(channels=("webhook",))
    factories.recipients(2)
    factories.webhook_account(http_server)
    http_server.default = Reply(status=status, body={"error": "no such hook"})
    task, _ = send_message(
        client=None,
        template="order_shipped",
        recipients=["u-1001", "u-1002"],
        params={"order_no": "A1"},
    )
    run_in_process(task)
    return task


# --- retry failed deliveries -------------------------------------------------------------


def test_retry_of_a_failed_task_runs_as_a_new_task_linked_to_the_failures(http_server):
    task = webhook_task(http_server, status=400)
    assert task.state == TaskState.FAILED
    failed = DeliveryRecord.objects.get(task=task)
    assert failed.state == DeliveryState.FAILED and "400" in failed.error

    http_server.default = Reply(status=200)
    result = retry_failed(task=task, by="ops")
    assert result.new_task and result.created == 1
    retry = result.task
    assert retry.pk != task.pk and retry.template_version_id == task.template_version_id
    assert retry.state == TaskState.TASKED and retry.created_by == "ops"
    row = DeliveryRecord.objects.get(task=retry)
    assert (row.parent_id, row.kind, row.state) == (failed.pk, DeliveryKind.PRIMARY, "pending")
    assert [e.to_state for e in retry.events.all()] == ["tasked"]
    note = task.events.order_by("at", "id").last()
    assert (note.from_state, note.to_state, note.by) == ("failed", "failed", "ops")
    assert str(retry.pk) in note.note

    run_in_process(retry)
    assert retry.state == TaskState.COMPLETED
    assert DeliveryRecord.objects.get(task=retry).state == DeliveryState.SENT
    # The failure stays on record; nothing is left to retry.
    assert DeliveryRecord.objects.get(pk=failed.pk).state == DeliveryState.FAILED
    with pytest.raises(APIError) as exc:
        retry_failed(task=task)
    assert exc.value.code == "nothing_to_retry"


def test_retry_while_pushing_adds_deliveries_to_the_same_task(db):
    factories.published_template(channels=("email",))
    (ann, _bob) = factories.recipients(2)
    task, _ = send_message(
        client=None, template="order_shipped", recipients=["u-1001"], params={"order_no": "A1"}
    )
    task.start()
    task.save()
    failed = DeliveryRecord.objects.get(task=task)
    DeliveryRecord.objects.filter(pk=failed.pk).update(
        state=DeliveryState.FAILED, error="550 mailbox unavailable"
    )
    # The address was fixed meanwhile: the retry goes to the new one.
    Recipient.objects.filter(pk=ann.pk).update(email="ann.new@example.com")
    result = retry_failed(task=task, by="ops")
    assert not result.new_task and result.task.pk == task.pk
    task.refresh_from_db()
    assert task.state == TaskState.PUSHING and task.delivery_count == 2
    row = DeliveryRecord.objects.get(parent=failed)
    assert (row.task_id, row.address, row.state) == (task.pk, "ann.new@example.com", "pending")


def test_retry_is_refused_for_a_cancelled_task(db):
    factories.published_template(channels=("inapp",))
    factories.recipients(1)
    task, _ = send_message(
        client=None, template="order_shipped", recipients=["u-1001"], params={"order_no": "A1"}
    )
    from tasks_app.services import cancel_task

    cancel_task(task=task)
    with pytest.raises(APIError) as exc:
        retry_failed(task=task)
    assert exc.value.status_code == 409


# --- release deferred now ------------------------------------------------------------------


def _quiet_now(zone: str = "Asia/Shanghai") -> QuietHours:
    """A window around now on the clock of `zone` (the factories' recipients live in
    Asia/Shanghai; a recipient without a zone uses the policy's)."""
    from zoneinfo import ZoneInfo

    now = timezone.now().astimezone(ZoneInfo(zone))
    return QuietHours.objects.create(
        name="now",
        start=(now - dt.timedelta(hours=1)).time().replace(microsecond=0),
        end=(now + dt.timedelta(hours=2)).time().replace(microsecond=0),
        timezone=zone,
        categories=["marketing"],
        action="defer",
    )


def test_release_deferred_now_sends_what_quiet_hours_held_back(db):
    factories.published_template(channels=("inapp",), category="marketing")
    factories.recipients(2)
    _quiet_now()
    task, _ = send_message(
        client=None,
        template="order_shipped",
        recipients=["u-1001", "u-1002"],
        params={"order_no": "A1"},
    )
    run_in_process(task)
    assert set(task.deliveries.values_list("state", flat=True)) == {DeliveryState.DEFERRED}

    result = release_deferred_now(task=task, by="ops")
    assert result["deliveries"] == 2 and not result["task_released"]
    # In-app deliveries are stored, so delivered, as soon as they are released.
    assert set(task.deliveries.values_list("state", flat=True)) == {DeliveryState.DELIVERED}
    assert all(d.content.get("body") for d in task.deliveries.all())
    assert task.events.filter(note="2 deferred deliveries released now").exists()
    with pytest.raises(APIError) as exc:
        release_deferred_now(task=task)
    assert exc.value.code == "nothing_deferred"


def test_release_starts_a_scheduled_task_now(db):
    factories.published_template(channels=("inapp",))
    factories.recipients(1)
    task, _ = send_message(
        client=None,
        template="order_shipped",
        recipients=["u-1001"],
        params={"order_no": "A1"},
        send_at=timezone.now() + dt.timedelta(days=1),
    )
    assert task.state == TaskState.SCHEDULED
    assert release_deferred_now(task=task, by="ops")["task_released"]
    task.refresh_from_db()
    assert task.state == TaskState.PUSHING
    assert task.events.order_by("at", "id").last().by == "ops"


def test_task_buttons_show_only_when_they_can_act(admin_client, http_server):
    task = webhook_task(http_server, status=400)
    page = admin_client.get(url(MessageTask, "change", task.pk)).content.decode()
    assert url(MessageTask, "retry_action", task.pk) in page
    assert url(MessageTask, "release_action", task.pk) not in page
    assert url(MessageTask, "cancel_action", task.pk) not in page  # terminal
    assert 'data-current="1"' in page and 'data-edge="pushing-failed" data-taken="1"' in page

    http_server.default = Reply(status=200)
    response = admin_client.post(
        url(MessageTask, "retry_action", task.pk), {"_form_submitted": "1"}
    )
    retry = MessageTask.objects.exclude(pk=task.pk).get()
    assert response["Location"] == url(MessageTask, "change", retry.pk)
    assert any("retried in this new task" in m for m in flash(response))
    page = admin_client.get(url(MessageTask, "change", task.pk)).content.decode()
    assert url(MessageTask, "retry_action", task.pk) not in page
    response = admin_client.post(
        url(MessageTask, "retry_action", task.pk), {"_form_submitted": "1"}
    )
    assert any("No failed delivery" in m for m in flash(response))


# --- send a test to me ---------------------------------------------------------------------


def test_send_a_test_to_me_goes_to_the_staff_inbox_and_email(admin_client, smtp_server):
    template = factories.published_template(channels=("inapp", "email", "webhook"))
    template.sample_params = {"order_no": "T-1"}
    template.save()
    User.objects.filter(username="admin").update(email="admin@example.com", first_name="Ada")
    factories.smtp_account(smtp_server)
    response = admin_client.post(
        url(MessageTemplate, "send_test_action", template.pk), {"_form_submitted": "1"}
    )
    task = MessageTask.objects.get()
    assert response["Location"] == url(MessageTask, "change", task.pk)
    assert sorted(task.channels) == ["email", "inapp"] and task.created_by == "admin"
    recipient = Recipient.objects.get(external_id="staff:admin")
    assert (recipient.email, recipient.name) == ("admin@example.com", "Ada")
    assert set(task.deliveries.values_list("kind", flat=True)) == {DeliveryKind.TEST}

    run_in_process(task)
    assert task.state == TaskState.COMPLETED
    assert smtp_server.recipients() == ["admin@example.com"]
    assert "T-1" in smtp_server.messages[0].subject


def test_send_test_needs_a_published_template(admin_client):
    template = MessageTemplate.objects.create(code="draft-only", name="Draft")
    template.contents.create(channel="inapp", body="hi")
    page = admin_client.get(url(MessageTemplate, "change", template.pk)).content.decode()
    assert url(MessageTemplate, "send_test_action", template.pk) not in page
    with pytest.raises(APIError) as exc:
        send_test(template=template, user=User.objects.get(username="admin"))
    assert exc.value.code == "template_not_published"


# --- live preview, versions, usage ----------------------------------------------------------


def test_live_preview_renders_the_unsaved_form_and_reports_problems_inline(admin_client):
    template = factories.published_template(
        channels=("inapp", "email"), sample_params={"order_no": "S1"}
    )
    change = url(MessageTemplate, "change", template.pk)
    preview = reverse("admin:templates_app_messagetemplate_live_preview")
    data = form_data(admin_client.get(change))
    inapp = next(
        k[: -len("-channel")] for k, v in data.items() if k.endswith("-channel") and v == ["inapp"]
    )
    data[f"{inapp}-body"] = ["Typed: {{ order_no }} for {{ recipient.name }}"]
    data["sample_params"] = ['{"order_no": "Z9"}']
    page = admin_client.post(preview, data).content.decode()
    assert "Typed: Z9 for admin" in page and "data-preview-error" not in page

    data[f"{inapp}-body"] = ["{% if %}"]
    response = admin_client.post(preview, data)
    assert response.status_code == 200
    assert "data-preview-error" in response.content.decode()

    data[f"{inapp}-body"] = ["ok"]
    data["sample_params"] = ['{"order_no": 5}']
    page = admin_client.post(preview, data).content.decode()
    assert "Sample params at" in page and "data-preview-errors" in page
    data["sample_params"] = ["{not json"]
    page = admin_client.post(preview, data).content.decode()
    assert "not valid JSON" in page
    # Without form fields (a read-only page) the stored draft is shown.
    page = admin_client.post(f"{preview}?object_id={template.pk}", {}).content.decode()
    assert "your order S1 is on its way" in page
    # Nothing was saved by previewing.
    assert template.contents.get(channel="inapp").body.startswith("Hi {{ recipient.name }}")


def test_version_page_shows_the_diff_to_the_previous_version(admin_client):
    template = factories.published_template(channels=("inapp",))
    update_template(
        template=template,
        contents=[
            {
                "channel": "inapp",
                "subject": "Order {{ order_no }} shipped",
                "body": "Order {{ order_no }} left the warehouse.",
            }
        ],
    )
    page = admin_client.get(url(MessageTemplate, "change", template.pk)).content.decode()
    assert "data-diff" in page and "left the warehouse" in page
    publish_template(template=template, by="ops")
    v2 = TemplateVersion.objects.get(template=template, version=2)
    page = admin_client.get(url(TemplateVersion, "change", v2.pk)).content.decode()
    assert "@@" in page
    assert "-  body: Hi {{ recipient.name }}, your order {{ order_no }} is on its way." in page
    assert "+  body: Order {{ order_no }} left the warehouse." in page
    page = admin_client.get(url(MessageTemplate, "change", template.pk)).content.decode()
    assert "The draft is the same as the published version." in page


def test_template_usage_counts(admin_client):
    template = factories.published_template(channels=("inapp",))
    factories.recipients(1)
    for _ in range(3):
        send_message(
            client=None, template="order_shipped", recipients=["u-1001"], params={"order_no": "A1"}
        )
    MessageTask.objects.filter(pk=MessageTask.objects.first().pk).update(
        created_at=timezone.now() - dt.timedelta(days=3)
    )
    rollup.refresh()
    response = admin_client.get(url(MessageTemplate, "changelist"))
    assert "Deliveries (30 days)" in response.content.decode()
    assert [t._deliveries_30d for t in response.context["cl"].result_list] == [3]
    page = admin_client.get(url(MessageTemplate, "change", template.pk)).content.decode()
    assert "last 24 hours: <b>2</b>" in page and "30 days: <b>3</b>" in page


# --- trace ---------------------------------------------------------------------------------


def test_recipient_page_traces_everything_sent_and_the_interactions(admin_client, http_server):
    task = webhook_task(http_server, status=400)
    factories.published_template("promo", channels=("inapp",))
    t2, _ = send_message(
        client=None, template="promo", recipients=["u-1001"], params={"order_no": "P1"}
    )
    run_in_process(t2)
    inapp = DeliveryRecord.objects.get(task=t2)
    Interaction.objects.create(
        delivery=inapp, kind=InteractionKind.CLICKED, url="https://shop.example/p1"
    )
    recipient = Recipient.objects.get(external_id="u-1001")
    page = admin_client.get(url(Recipient, "change", recipient.pk)).content.decode()
    assert url(DeliveryRecord, "change", inapp.pk) in page
    assert url(MessageTask, "change", t2.pk) in page
    assert "promo" in page and "data-interactions" in page and "https://shop.example/p1" in page
    # The group webhook post of the first task has no recipient: not in their trace.
    assert url(MessageTask, "change", task.pk) not in page


def test_failed_delivery_shows_every_attempt_with_its_error(admin_client, http_server):
    factories.published_template(channels=("webhook",))
    factories.recipients(1)
    factories.webhook_account(http_server)
    http_server.queue(Reply(status=503, body="busy"))
    http_server.default = Reply(status=404, body="gone")
    task, _ = send_message(
        client=None, template="order_shipped", recipients=["u-1001"], params={"order_no": "A1"}
    )
    run_in_process(task)
    d = DeliveryRecord.objects.get(task=task)
    if d.state == DeliveryState.QUEUED:  # the 503 was transient: the retry gets the 404
        DeliveryRecord.objects.filter(pk=d.pk).update(not_before=None)
        send_chunk("webhook", [d.pk])
        d.refresh_from_db()
    assert d.state == DeliveryState.FAILED and len(d.attempt_log) == 2
    page = admin_client.get(url(DeliveryRecord, "change", d.pk)).content.decode()
    assert page.count("data-attempt=") == 2
    assert "503" in page and "404" in page and "permanent" in page


def test_channel_account_shows_its_rate_limiter(admin_client):
    from channels_app.ratelimit import take

    account = ChannelAccount.objects.create(
        channel="sms", provider="console", name="limited", rate_limit_per_sec=5
    )
    take(account.pk, 5, 5)
    page = admin_client.get(url(ChannelAccount, "change", account.pk)).content.decode()
    assert "5.0/s;" in page and "tokens available now" in page
    assert "of 5 tokens" in page


# --- dashboard -----------------------------------------------------------------------------


def seed_dashboard(n_tasks: int = 3, suffix: str = "") -> dict:
    """Deliveries in every state on two channels, with interactions, built with the ORM."""
    template = factories.published_template(f"order_shipped{suffix}", channels=("inapp", "email"))
    other = factories.published_template(f"promo{suffix}", channels=("inapp",))
    (ann,) = factories.recipients(1, prefix=f"u{suffix}-")
    now = timezone.now()
    rows = []
    for i in range(n_tasks):
        for tpl in (template, other):
            task = MessageTask.objects.create(
                template=tpl,
                template_version=tpl.versions.get(),
                channels=["inapp"],
                state=TaskState.COMPLETED,
                created_at=now - dt.timedelta(minutes=30 + i),
            )
            rows += [
                DeliveryRecord(
                    task=task,
                    recipient=ann,
                    channel="inapp",
                    state="delivered",
                    created_at=task.created_at,
                    sent_at=task.created_at + dt.timedelta(seconds=2),
                    delivered_at=task.created_at + dt.timedelta(seconds=2),
                    read_at=now,
                ),
                DeliveryRecord(
                    task=task,
                    recipient=ann,
                    channel="email",
                    state="sent",
                    created_at=task.created_at,
                    sent_at=task.created_at + dt.timedelta(seconds=10),
                ),
                DeliveryRecord(
                    task=task,
                    recipient=ann,
                    channel="email",
                    state="failed",
                    created_at=task.created_at,
                    error="550 mailbox unavailable",
                ),
                DeliveryRecord(
                    task=task,
                    recipient=ann,
                    channel="email",
                    state="deferred",
                    created_at=task.created_at,
                    not_before=now + dt.timedelta(hours=1),
                ),
                DeliveryRecord(
                    task=task,
                    recipient=ann,
                    channel="inapp",
                    state="skipped",
                    reason="opted_out",
                    created_at=task.created_at,
                ),
            ]
    DeliveryRecord.objects.bulk_create(rows)
    for d in DeliveryRecord.objects.filter(state="delivered")[:2]:
        Interaction.objects.create(delivery=d, kind=InteractionKind.CLICKED)
    # Outside the period: not counted.
    old = MessageTask.objects.create(
        template=template,
        template_version=template.versions.get(),
        channels=["inapp"],
        created_at=now - dt.timedelta(days=3),
    )
    DeliveryRecord.objects.create(
        task=old,
        recipient=ann,
        channel="inapp",
        state="failed",
        created_at=old.created_at,
        error="old error",
    )
    rollup.refresh(since=now - dt.timedelta(days=30))
    return {"template": template, "other": other}


def test_dashboard_figures(db):
    seeded = seed_dashboard(3)
    data = dashboard.stats(dashboard.Filters(period="24h"))
    by_channel = {row["channel"]: row for row in data["channels"]}
    assert by_channel["inapp"]["total"] == 12 and by_channel["email"]["total"] == 18
    assert by_channel["email"]["success_rate"] == 50.0
    assert by_channel["inapp"]["success_rate"] == 100.0
    assert data["clicked"] == 2
    assert sum(r["sent"] for r in data["channels"]) == 12
    assert sum(r["read"] for r in data["channels"]) == 6
    assert data["backlog"]["counts"]["deferred"] == 6
    assert data["errors"] == [{"message": "550 mailbox unavailable", "channel": "email", "n": 6}]
    assert [t["code"] for t in data["templates"]] == ["order_shipped", "promo"] or [
        t["code"] for t in data["templates"]
    ] == ["promo", "order_shipped"]
    assert data["latency"][""]["p50"] == pytest.approx(6.0)
    assert data["latency"]["inapp"]["p95"] == pytest.approx(2.0)
    assert data["latency"]["email"]["p50"] == pytest.approx(10.0)
    # Longer period: the old failure counts; one template only; one channel only.
    week = dashboard.stats(dashboard.Filters(period="7d"))
    assert sum(r["failed"] for r in week["channels"]) == 7
    promo = dashboard.stats(dashboard.Filters(template=seeded["other"].pk))
    assert sum(r["total"] for r in promo["channels"]) == 15
    email = dashboard.stats(dashboard.Filters(channel="email"))
    assert [r["channel"] for r in email["channels"]] == ["email"]


def test_sqlite_latency_fallback_matches_percentile_cont():
    values = [2.0, 10.0, 2.0, 10.0, 2.0, 10.0]
    assert dashboard._percentile(values, 0.5) == 6.0
    assert dashboard._percentile(values, 0.95) == pytest.approx(10.0)
    assert dashboard._percentile([1.0, 2.0, 3.0, 4.0], 0.95) == pytest.approx(3.85)
    assert dashboard._percentile([], 0.5) is None


def test_dashboard_page_draws_charts_with_data(admin_client, settings):
    settings.MSGCENTER_DASHBOARD_CACHE_SECONDS = 0
    seed_dashboard(2)
    response = admin_client.get(reverse("admin:index"), {"period": "24h"})
    page = response.content.decode()
    assert page.count('class="chart"') == 3
    chart = json.loads(response.context["chart_over_time"])
    assert {d["label"] for d in chart["datasets"]} == {"email", "inapp"}
    assert sum(sum(d["data"]) for d in chart["datasets"]) == 20
    assert len(chart["labels"]) in (24, 25)
    assert "550 mailbox unavailable" in page and 'data-kpi="backlog">4<' in page
    bad = admin_client.get(
        reverse("admin:index"), {"period": "1y", "channel": "nope", "template": "x"}
    )
    assert bad.status_code == 200 and bad.context["filters"] == dashboard.Filters()


def test_dashboard_and_changelists_cost_a_bounded_number_of_queries(admin_client, settings):
    settings.MSGCENTER_DASHBOARD_CACHE_SECONDS = 0

    def count(path: str, **params) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(path, params).status_code == 200
        return len(ctx.captured_queries)

    seed_dashboard(1)
    pages = [
        reverse("admin:index"),
        url(MessageTemplate, "changelist"),
        url(Recipient, "changelist"),
        url(ChannelAccount, "changelist"),
    ]
    first = [count(p) for p in pages]
    # More rows, templates, recipients and accounts: the same number of queries.
    seed_dashboard(4, suffix="_b")
    seed_dashboard(2, suffix="_c")
    ChannelAccount.objects.create(
        channel="sms", provider="console", name="more", rate_limit_per_sec=3
    )
    assert [count(p) for p in pages] == first
    with CaptureQueriesContext(connection) as ctx:
        admin_client.get(reverse("admin:index"))
    assert not [
        q for q in ctx.captured_queries if q["sql"].count("SELECT") > 3
    ]  # no query per row or nested loops


def test_dashboard_is_cached_briefly(admin_client, settings):
    settings.MSGCENTER_DASHBOARD_CACHE_SECONDS = 30
    seed_dashboard(1)
    admin_client.get(reverse("admin:index"))
    with CaptureQueriesContext(connection) as ctx:
        admin_client.get(reverse("admin:index"))
    assert not [q for q in ctx.captured_queries if "deliveryrecord" in q["sql"]]


# --- staff groups ---------------------------------------------------------------------------


@pytest.fixture
def console_groups(db):
    ensure_console_groups()


@pytest.fixture
def viewer(client, console_groups):
    user = User.objects.create_user("vera", "vera@example.com", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Viewer"))
    client.force_login(user)
    return client


@pytest.fixture
def operator(client, console_groups):
    user = User.objects.create_user("otto", "otto@example.com", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Operator"))
    client.force_login(user)
    return client


def test_groups_come_from_a_data_migration(console_groups):
    viewer = set(Group.objects.get(name="Viewer").permissions.values_list("codename", flat=True))
    assert {
        "view_messagetemplate",
        "view_messagetask",
        "view_deliveryrecord",
        "view_channelaccount",
        "view_quiethours",
        "view_interaction",
    } <= viewer
    assert all(c.startswith("view_") for c in viewer)
    operator = set(
        Group.objects.get(name="Operator").permissions.values_list("codename", flat=True)
    )
    assert viewer <= operator
    assert {
        "change_messagetemplate",
        "add_messagetask",
        "change_messagetask",
        "change_channelaccount",
        "add_quiethours",
        "change_recurringsend",
    } <= operator
    assert not {"add_apikey", "change_apiclient", "delete_messagetask"} & operator


def test_viewer_sees_everything_and_can_change_nothing(viewer, http_server):
    task = webhook_task(http_server, status=400)
    template = MessageTemplate.objects.get()
    account = ChannelAccount.objects.get()
    assert viewer.get(reverse("admin:index")).status_code == 200
    for model, obj in (
        (MessageTemplate, template),
        (MessageTask, task),
        (ChannelAccount, account),
        (Recipient, Recipient.objects.first()),
    ):
        assert viewer.get(url(model, "changelist")).status_code == 200
        page = viewer.get(url(model, "change", obj.pk)).content.decode()
        assert 'name="_save"' not in page and 'name="_continue"' not in page
        assert viewer.post(url(model, "change", obj.pk), {}).status_code == 403
        assert viewer.get(url(model, "add")).status_code == 403
    page = viewer.get(url(MessageTemplate, "change", template.pk)).content.decode()
    for button in ("publish_action", "archive_action", "send_test_action"):
        assert url(MessageTemplate, button, template.pk) not in page
        assert (
            viewer.post(
                url(MessageTemplate, button, template.pk), {"_form_submitted": "1"}
            ).status_code
            == 403
        )
    page = viewer.get(url(MessageTask, "change", task.pk)).content.decode()
    assert url(MessageTask, "retry_action", task.pk) not in page
    assert (
        viewer.post(url(MessageTask, "retry_action", task.pk), {"_form_submitted": "1"}).status_code
        == 403
    )
    page = viewer.get(url(ChannelAccount, "change", account.pk)).content.decode()
    assert url(ChannelAccount, "test_connection_detail", account.pk) not in page
    assert "s3cret" not in page
    assert MessageTask.objects.count() == 1 and template.versions.count() == 1


def test_operator_publishes_and_edits_quiet_hours_but_not_api_keys(operator):
    template = factories.published_template(channels=("inapp",))
    response = operator.post(
        url(MessageTemplate, "publish_action", template.pk), {"_form_submitted": "1"}
    )
    assert response.status_code == 302
    assert operator.get(url(QuietHours, "add")).status_code == 200
    from tasks_app.models import ApiClient

    assert operator.get(url(ApiClient, "add")).status_code == 403


# --- scale: seeding and the rollup ---------------------------------------------------------


def test_seed_deliveries_makes_n_rows_and_fills_the_rollup():
    from django.core.management import call_command

    from channels_app.models import DeliveryStat

    call_command("seed_deliveries", 600, "--days", "3", "--seed", "7", "--batch", "250")
    assert DeliveryRecord.objects.count() == 600
    tasks = MessageTask.objects.count()
    assert 120 <= tasks < 600
    assert sum(MessageTask.objects.values_list("delivery_count", flat=True)) == 600
    assert Interaction.objects.filter(kind=InteractionKind.READ).count() > 0
    assert (
        DeliveryRecord.objects.filter(state=DeliveryState.FAILED).exclude(attempt_log=[]).exists()
    )
    totals = DeliveryStat.objects.aggregate(n=Sum("total"), clicked=Sum("clicked"))
    assert totals["n"] == 600
    assert (
        totals["clicked"]
        == Interaction.objects.filter(kind=InteractionKind.CLICKED)
        .values("delivery")
        .distinct()
        .count()
    )
    data = dashboard.stats(dashboard.Filters(period="7d"))
    assert sum(r["total"] for r in data["channels"]) == 600
    call_command("seed_deliveries", 50, "--days", "1")  # again: new rows, same recipients
    assert DeliveryRecord.objects.count() == 650


def test_rollup_tick_recomputes_recent_hours_only():
    from channels_app.models import DeliveryStat
    from channels_app.tasks import rollup_stats_task

    seed_dashboard(1)
    old_hour = DeliveryStat.objects.order_by("hour").first()
    assert old_hour.hour < timezone.now() - dt.timedelta(days=2)
    DeliveryRecord.objects.filter(state="deferred").update(state="skipped", reason="cancelled")
    assert rollup_stats_task() >= 1  # what the beat entry runs
    recent = DeliveryStat.objects.filter(hour__gte=timezone.now() - dt.timedelta(hours=2))
    assert sum(recent.values_list("skipped", flat=True)) == 2 + 2
    assert DeliveryStat.objects.filter(pk=old_hour.pk).exists()  # older hours untouched
    # Without a tick for a while, the dashboard refreshes the recent hours itself.
    DeliveryStat.objects.update(updated_at=timezone.now() - dt.timedelta(hours=1))
    before = timezone.now()
    dashboard.stats(dashboard.Filters())
    assert rollup.last_refresh() >= before


def test_a_test_send_ignores_quiet_hours_and_dedup(admin_client):
    template = factories.published_template(
        channels=("inapp",), category="marketing", sample_params={"order_no": "Q1"}
    )
    _quiet_now("UTC")  # the staff recipient has no zone: the policy's applies
    admin = User.objects.get(username="admin")
    first = send_test(template=template, user=admin)
    run_in_process(first)
    second = send_test(template=template, user=admin)
    run_in_process(second)
    for task in (first, second):
        assert task.state == TaskState.COMPLETED
        assert list(task.deliveries.values_list("state", flat=True)) in (
            [DeliveryState.SENT],
            [DeliveryState.DELIVERED],
        )


@pytest.mark.django_db(transaction=True)
def test_rollup_refreshes_racing_each_other_all_succeed():
    import threading

    from channels_app.models import DeliveryStat

    seed_dashboard(2)
    errors: list[Exception] = []
    barrier = threading.Barrier(4)

    def refresh() -> None:
        try:
            barrier.wait()
            rollup.refresh()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    start = rollup.hour_floor(timezone.now() - dt.timedelta(hours=47))
    recent = DeliveryRecord.objects.filter(created_at__gte=start).count()
    assert DeliveryStat.objects.filter(hour__gte=start).aggregate(n=Sum("total"))["n"] == recent
