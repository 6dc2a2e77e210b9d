"""The admin console, driven through the Django test client as a superuser against a
real PostgreSQL database. Fixture rows are built with the ORM."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import formats, timezone

from channels_app.models import (
    ChannelAccount,
    DeliveryKind,
    DeliveryRecord,
    DeliveryState,
    Interaction,
    InteractionKind,
)
from tasks_app.models import (
    ApiClient,
    ApiKey,
    MessageTask,
    Preference,
    QuietHours,
    ReadReminder,
    Recipient,
    RecurringSend,
    TaskEvent,
    TaskState,
)
from templates_app.models import MessageTemplate, TemplateContent, TemplateStatus, TemplateVersion

SECRET = "s3cr3t-Value-never-shown"
READ_ONLY = (TemplateVersion, TaskEvent, DeliveryRecord, Interaction, MessageTask, ReadReminder)


# --- helpers ---------------------------------------------------------------------------


class _FormParser(HTMLParser):
    """Collects what a browser would submit from the admin's change form."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self.in_form = False
        self.done = False
        self.select: str | None = None
        self.first_option: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self.done:
            return
        if tag == "form" and (a.get("id") or "").endswith("_form"):
            self.in_form = True
        if not self.in_form:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "file"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            default = "on" if a.get("type") in ("checkbox", "radio") else ""
            self.data.setdefault(name, []).append(a.get("value", default))
        elif tag == "select" and name:
            self.select, self.first_option = name, None
            self.data.setdefault(name, [])
        elif tag == "option" and self.select:
            if self.first_option is None:
                self.first_option = a.get("value", "")
            if "selected" in a:
                self.data[self.select].append(a.get("value", ""))
        elif tag == "textarea" and name:
            self.textarea = name
            self.data[name] = [""]

    def handle_endtag(self, tag):
        if tag == "form" and self.in_form:
            self.in_form, self.done = False, True
        elif tag == "select" and self.select:
            # A browser submits the first option of a single select with none selected.
            if not self.data[self.select] and self.first_option is not None:
                self.data[self.select] = [self.first_option]
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data):
        if self.textarea:
            # The admin renders a newline right after <textarea>; browsers drop it.
            current = self.data[self.textarea][0]
            self.data[self.textarea] = [
                (current + data).lstrip("\n") if not current else current + data
            ]


def form_data(response) -> dict[str, list[str]]:
    parser = _FormParser()
    parser.feed(response.content.decode())
    return parser.data


def url(model, view: str, *args) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture
def objs(db):
    """One row of every model, linked together as the pipeline would link them."""
    now = timezone.now()
    account = ChannelAccount.objects.create(
        channel="webhook",
        provider="webhook",
        name="ops hook",
        config={"url": "http://127.0.0.1:9/hook", "secret": SECRET},
    )
    # Published once (v1), then edited: the draft differs from the frozen version.
    template = MessageTemplate.objects.create(
        code="order-shipped",
        name="Order shipped",
        status=TemplateStatus.PUBLISHED,
        version=1,
        params_schema={"type": "object", "properties": {"order": {"type": "string"}}},
        sample_params={"order": "A1"},
    )
    TemplateContent.objects.create(
        template=template, channel="inapp", subject="Shipped", body="Order {{ order }} shipped"
    )
    TemplateContent.objects.create(
        template=template,
        channel="email",
        subject="Order {{ order }}",
        body="Your order {{ order }} shipped",
    )
    version = TemplateVersion.objects.create(
        template=template,
        version=1,
        category=template.category,
        params_schema=template.params_schema,
        contents=[c.as_snapshot() for c in template.contents.all()],
    )
    client = ApiClient.objects.create(name="shop", scopes=["send"])
    ApiKey.generate(client)
    recipient = Recipient.objects.create(
        external_id="u-1001", name="Ann", email="ann@example.com", timezone="Asia/Shanghai"
    )
    Preference.objects.create(recipient=recipient, category="marketing", channel="sms")
    quiet = QuietHours.objects.create(
        name="nights", start=dt.time(22), end=dt.time(8), categories=["marketing"]
    )
    task = MessageTask.objects.create(
        template=template,
        template_version=version,
        client=client,
        params={"order": "A1"},
        channels=["inapp", "email"],
        recipient_count=1,
        delivery_count=3,
        state=TaskState.PUSHING,
    )
    TaskEvent.objects.create(task=task, from_state="initialized", to_state="tasked", by="api")
    TaskEvent.objects.create(
        task=task,
        from_state="tasked",
        to_state="pushing",
        by="pipeline",
        note="planned 3 deliveries",
    )
    sent = DeliveryRecord.objects.create(
        task=task,
        recipient=recipient,
        channel="inapp",
        state=DeliveryState.SENT,
        address="u-1001",
        provider_message_id="pm-42",
        sent_at=now,
        attempts=1,
    )
    deferred = DeliveryRecord.objects.create(
        task=task,
        recipient=recipient,
        channel="email",
        state=DeliveryState.DEFERRED,
        address="ann@example.com",
        not_before=now + dt.timedelta(hours=3),
    )
    failed = DeliveryRecord.objects.create(
        task=task,
        recipient=None,
        channel="webhook",
        account=account,
        kind=DeliveryKind.PRIMARY,
        state=DeliveryState.FAILED,
        error="HTTP 404 from webhook",
        attempts=2,
    )
    interaction = Interaction.objects.create(delivery=sent, kind=InteractionKind.READ)
    recurring = RecurringSend.objects.create(
        name="weekly digest", template=template, audience={"tag": "vip"}, minute="0", hour="9"
    )
    reminder = ReadReminder.objects.create(
        delivery=sent, channel="email", due_at=now + dt.timedelta(hours=1)
    )
    return {
        ChannelAccount: account,
        MessageTemplate: template,
        TemplateVersion: version,
        ApiClient: client,
        Recipient: recipient,
        QuietHours: quiet,
        MessageTask: task,
        TaskEvent: task.events.first(),
        DeliveryRecord: sent,
        Interaction: interaction,
        RecurringSend: recurring,
        "deferred": deferred,
        "failed": failed,
        ReadReminder: reminder,
    }


OUR_MODELS = [
    m
    for m in admin.site._registry
    if m._meta.app_label in ("templates_app", "tasks_app", "channels_app")
]


# --- every page answers ----------------------------------------------------------------


def test_every_model_of_the_three_apps_is_registered():
    expected = {
        MessageTemplate,
        TemplateVersion,
        Recipient,
        QuietHours,
        MessageTask,
        TaskEvent,
        RecurringSend,
        ApiClient,
        ChannelAccount,
        DeliveryRecord,
        Interaction,
        ReadReminder,
    }
    assert expected <= set(OUR_MODELS)
    # The rest are edited inline on their parent's page.
    assert set(OUR_MODELS) - expected == set()


@pytest.mark.parametrize("model", OUR_MODELS, ids=lambda m: m.__name__)
def test_changelist_change_and_add_pages_answer(admin_client, objs, model):
    obj = objs[model]
    response = admin_client.get(url(model, "changelist"))
    assert response.status_code == 200
    assert url(model, "change", obj.pk) in response.content.decode()

    response = admin_client.get(url(model, "change", obj.pk))
    assert response.status_code == 200

    response = admin_client.get(url(model, "add"))
    assert response.status_code == (403 if model in READ_ONLY else 200)


def test_index_and_sidebar(admin_client, objs):
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert url(DeliveryRecord, "changelist") in response.content.decode()


@pytest.mark.parametrize(
    "model",
    [TemplateVersion, TaskEvent, DeliveryRecord, Interaction, MessageTask],
    ids=lambda m: m.__name__,
)
def test_read_only_models_refuse_add_change_and_delete(admin_client, objs, model):
    obj = objs[model]
    assert admin_client.post(url(model, "add"), {}).status_code == 403
    assert admin_client.post(url(model, "change", obj.pk), {}).status_code == 403
    assert admin_client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()
    page = admin_client.get(url(model, "change", obj.pk)).content.decode()
    assert 'name="_save"' not in page


# --- templates -------------------------------------------------------------------------


def test_template_page_has_a_tab_per_channel_and_the_versions(admin_client, objs):
    template = objs[MessageTemplate]
    page = admin_client.get(url(MessageTemplate, "change", template.pk)).content.decode()
    assert "In-app inbox" in page and "Email" in page
    assert "New channel" in page
    assert url(TemplateVersion, "change", objs[TemplateVersion].pk) in page
    # Published: publish (again) and archive are offered, restore is not.
    assert url(MessageTemplate, "publish_action", template.pk) in page
    assert url(MessageTemplate, "archive_action", template.pk) in page
    assert url(MessageTemplate, "restore_action", template.pk) not in page


def test_template_page_previews_each_content_with_the_sample_params(admin_client, objs):
    template = objs[MessageTemplate]
    template.contents.filter(channel="email").update(body_html="<b>{{ order }}</b>")
    template.contents.filter(channel="inapp").update(body="{{ missing }}")
    page = admin_client.get(url(MessageTemplate, "change", template.pk)).content.decode()
    assert "Your order A1 shipped" in page
    assert "&lt;b&gt;A1&lt;/b&gt;" in page  # rendered HTML is shown as text, never run
    assert "&#x27;missing&#x27; is undefined" in page  # a broken content says why


def test_editing_a_content_and_adding_a_channel_through_the_form(admin_client, objs):
    template = objs[MessageTemplate]
    change = url(MessageTemplate, "change", template.pk)
    data = form_data(admin_client.get(change))
    email_prefix = next(
        k[: -len("-channel")]
        for k, v in data.items()
        if k.endswith("-0-channel") and v == ["email"]
    )
    data[f"{email_prefix}-body"] = ["Order {{ order }} is on its way"]
    new_prefix = next(
        k[: -len("-0-channel")] for k, v in data.items() if k.endswith("-0-channel") and v == [""]
    )
    data[f"{new_prefix}-0-channel"] = ["sms"]
    data[f"{new_prefix}-0-body"] = ["Order {{ order }} shipped"]
    data["_continue"] = ["1"]
    data["status"] = ["archived"]  # ignored: only the transition buttons move the status
    response = admin_client.post(change, data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    assert template.contents.get(channel="email").body == "Order {{ order }} is on its way"
    assert template.contents.get(channel="sms").body == "Order {{ order }} shipped"
    assert template.contents.count() == 3
    template.refresh_from_db()
    assert template.status == TemplateStatus.PUBLISHED


def test_adding_a_channel_that_exists_is_a_form_error(admin_client, objs):
    template = objs[MessageTemplate]
    change = url(MessageTemplate, "change", template.pk)
    data = form_data(admin_client.get(change))
    new_prefix = next(
        k[: -len("-0-channel")] for k, v in data.items() if k.endswith("-0-channel") and v == [""]
    )
    data[f"{new_prefix}-0-channel"] = ["email"]
    data[f"{new_prefix}-0-body"] = ["duplicate"]
    response = admin_client.post(change, data)
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert template.contents.count() == 2


def test_bad_params_schema_is_a_form_error(admin_client, objs):
    template = objs[MessageTemplate]
    change = url(MessageTemplate, "change", template.pk)
    data = form_data(admin_client.get(change))
    assert "status" not in data  # a protected FSM field is never a form field
    data["params_schema"] = ['{"type": "no-such-type"}']
    response = admin_client.post(change, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["params_schema"]
    template.refresh_from_db()
    assert template.params_schema["type"] == "object"


def test_add_template_with_a_content(admin_client, db):
    add = url(MessageTemplate, "add")
    data = form_data(admin_client.get(add))
    data.update(
        {
            "code": ["welcome"],
            "name": ["Welcome"],
            "category": ["notification"],
            "contents-0-channel": ["inapp"],
            "contents-0-body": ["Hello {{ name }}"],
        }
    )
    response = admin_client.post(add, data)
    assert response.status_code == 302
    template = MessageTemplate.objects.get(code="welcome")
    assert template.status == TemplateStatus.DRAFT
    assert list(template.contents.values_list("channel", "body")) == [("inapp", "Hello {{ name }}")]


def test_publish_button_freezes_a_version(admin_client, objs):
    template = objs[MessageTemplate]
    publish = url(MessageTemplate, "publish_action", template.pk)
    # GET shows the confirmation dialog and changes nothing.
    response = admin_client.get(publish)
    assert response.status_code == 200
    assert 'id="dialog"' in response.content.decode()
    assert template.versions.count() == 1

    response = admin_client.post(publish, {"_form_submitted": "1"})
    assert response.status_code == 302
    assert response["Location"] == url(MessageTemplate, "change", template.pk)
    template.refresh_from_db()
    assert template.status == TemplateStatus.PUBLISHED
    assert template.version == 2
    version = template.versions.get(version=2)
    assert version.published_by == "admin"
    assert {c["channel"] for c in version.contents} == {"inapp", "email"}
    assert any("Published version 2" in m for m in flash(response))
    history = admin_client.get(url(MessageTemplate, "history", template.pk)).content.decode()
    assert "Published version 2." in history

    # Through htmx (the dialog) the answer is an HX-Redirect. The draft did not change,
    # so no new version is minted.
    response = admin_client.post(publish, {"_form_submitted": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Redirect"] == url(MessageTemplate, "change", template.pk)
    assert template.versions.count() == 2
    assert any("Nothing changed since version 2" in m for m in flash(response))


def test_publish_refuses_a_template_that_does_not_compile(admin_client, objs):
    template = objs[MessageTemplate]
    template.contents.filter(channel="email").update(body="{% if %}")
    response = admin_client.post(
        url(MessageTemplate, "publish_action", template.pk), {"_form_submitted": "1"}, follow=True
    )
    assert response.status_code == 200
    assert any("does not compile" in m for m in [str(m) for m in response.context["messages"]])
    template.refresh_from_db()
    assert (template.status, template.version) == (TemplateStatus.PUBLISHED, 1)
    assert template.versions.count() == 1


def test_archive_freezes_the_template_and_restore_brings_it_back(admin_client, objs):
    template = objs[MessageTemplate]
    change = url(MessageTemplate, "change", template.pk)
    admin_client.post(url(MessageTemplate, "archive_action", template.pk), {"_form_submitted": "1"})
    template.refresh_from_db()
    assert template.status == TemplateStatus.ARCHIVED
    page = admin_client.get(change).content.decode()
    assert url(MessageTemplate, "restore_action", template.pk) in page
    assert url(MessageTemplate, "publish_action", template.pk) not in page
    assert admin_client.post(change, form_data(admin_client.get(change))).status_code == 403

    admin_client.post(url(MessageTemplate, "restore_action", template.pk), {"_form_submitted": "1"})
    template.refresh_from_db()
    assert template.status == TemplateStatus.DRAFT


def test_a_transition_the_state_does_not_allow_is_reported(admin_client, objs):
    template = objs[MessageTemplate]
    response = admin_client.post(
        url(MessageTemplate, "restore_action", template.pk), {"_form_submitted": "1"}
    )
    assert response.status_code == 302
    assert any("cannot be restored" in m for m in flash(response))
    template.refresh_from_db()
    assert template.status == TemplateStatus.PUBLISHED


# --- tasks -----------------------------------------------------------------------------


def test_task_page_shows_timeline_deliveries_and_counts(admin_client, objs):
    task = objs[MessageTask]
    page = admin_client.get(url(MessageTask, "change", task.pk)).content.decode()
    assert "data-timeline" in page and "data-diagram" in page
    assert "planned 3 deliveries" in page and "pipeline" in page
    assert page.index("Initialized &rarr; Tasked") < page.index("planned 3 deliveries")
    for delivery in (objs[DeliveryRecord], objs["deferred"], objs["failed"]):
        assert url(DeliveryRecord, "change", delivery.pk) in page
    deliveries = url(DeliveryRecord, "changelist")
    assert f"{deliveries}?task__id__exact={task.pk}&amp;state__exact=failed" in page
    assert "Deferred: <b>1</b>" in page and "Sent: <b>1</b>" in page
    assert url(MessageTask, "cancel_action", task.pk) in page


def test_task_deliveries_inline_is_paginated(admin_client, objs):
    task = objs[MessageTask]
    DeliveryRecord.objects.bulk_create(
        DeliveryRecord(task=task, channel="inapp", address=f"x{i}") for i in range(30)
    )
    first = admin_client.get(url(MessageTask, "change", task.pk)).content.decode()
    assert first.count(f'href="{url(DeliveryRecord, "changelist")}') >= 1
    shown = [
        d.pk
        for d in DeliveryRecord.objects.filter(task=task)
        if url(DeliveryRecord, "change", d.pk) + '"' in first
    ]
    assert len(shown) == 20


def test_cancel_button_cancels_through_the_service(admin_client, objs):
    task = objs[MessageTask]
    response = admin_client.post(
        url(MessageTask, "cancel_action", task.pk), {"_form_submitted": "1"}
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.state == TaskState.CANCELLED
    event = task.events.last()
    assert (event.to_state, event.by) == ("cancelled", "admin")
    assert DeliveryRecord.objects.get(pk=objs["deferred"].pk).state == DeliveryState.SKIPPED
    assert DeliveryRecord.objects.get(pk=objs[DeliveryRecord].pk).state == DeliveryState.SENT
    # Terminal now: no button, and a second cancel is refused with a message.
    page = admin_client.get(url(MessageTask, "change", task.pk)).content.decode()
    assert url(MessageTask, "cancel_action", task.pk) not in page
    response = admin_client.post(
        url(MessageTask, "cancel_action", task.pk), {"_form_submitted": "1"}
    )
    assert any("cannot be cancelled" in m for m in flash(response))


def test_task_search_by_id_and_template_code(admin_client, objs):
    task = objs[MessageTask]
    changelist = url(MessageTask, "changelist")
    change = url(MessageTask, "change", task.pk)
    assert change in admin_client.get(changelist, {"q": str(task.pk)}).content.decode()
    assert change in admin_client.get(changelist, {"q": "order-shipped"}).content.decode()
    assert change not in admin_client.get(changelist, {"q": "nope"}).content.decode()
    assert change in admin_client.get(changelist, {"state__exact": "pushing"}).content.decode()
    assert change not in admin_client.get(changelist, {"state__exact": "failed"}).content.decode()


# --- deliveries ------------------------------------------------------------------------


def _listed(admin_client, objs, **params) -> set[int]:
    page = admin_client.get(url(DeliveryRecord, "changelist"), params).content.decode()
    candidates = (objs[DeliveryRecord], objs["deferred"], objs["failed"])
    return {
        d.pk
        for d in candidates
        if url(DeliveryRecord, "change", d.pk) + "?" in page
        or url(DeliveryRecord, "change", d.pk) + '"' in page
    }


def test_delivery_search_and_filters(admin_client, objs):
    sent, deferred, failed = objs[DeliveryRecord], objs["deferred"], objs["failed"]
    task = objs[MessageTask]
    assert _listed(admin_client, objs, q="u-1001") == {sent.pk, deferred.pk}
    assert _listed(admin_client, objs, q=str(task.pk)) == {sent.pk, deferred.pk, failed.pk}
    assert _listed(admin_client, objs, q="pm-42") == {sent.pk}
    assert _listed(admin_client, objs, q=f"#{failed.pk}") == {failed.pk}
    assert _listed(admin_client, objs, q="nobody") == set()
    assert _listed(admin_client, objs, state__exact="deferred") == {deferred.pk}
    assert _listed(admin_client, objs, channel="webhook") == {failed.pk}
    assert _listed(admin_client, objs, kind__exact="primary") == {sent.pk, deferred.pk, failed.pk}
    assert _listed(admin_client, objs, recipient__id__exact=objs[Recipient].pk) == {
        sent.pk,
        deferred.pk,
    }


@pytest.mark.parametrize(
    "model", [DeliveryRecord, Interaction, TaskEvent, MessageTask], ids=lambda m: m.__name__
)
def test_big_lists_never_count_and_cost_the_same_for_more_rows(admin_client, objs, model):
    task = objs[MessageTask]

    def grow():
        deliveries = DeliveryRecord.objects.bulk_create(
            DeliveryRecord(task=task, recipient=objs[Recipient], channel="inapp") for _ in range(15)
        )
        Interaction.objects.bulk_create(
            Interaction(delivery=d, kind=InteractionKind.CLICKED) for d in deliveries
        )
        for _ in range(15):
            extra = MessageTask.objects.create(
                template=task.template,
                template_version=task.template_version,
                client=task.client,
                channels=["inapp"],
            )
            TaskEvent.objects.create(task=extra, from_state="initialized", to_state="tasked")

    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(url(model, "changelist")).status_code == 200
        return [q["sql"] for q in ctx.captured_queries]

    grow()
    first = queries()
    assert not [q for q in first if "COUNT(" in q.upper() and model._meta.db_table in q]
    grow()
    assert len(queries()) == len(first)


def test_deferred_delivery_shows_release_at(admin_client, objs):
    deferred = objs["deferred"]
    release = formats.localize(timezone.template_localtime(deferred.not_before))
    page = admin_client.get(url(DeliveryRecord, "changelist")).content.decode()
    assert "Release at" in page
    assert release in page
    page = admin_client.get(url(DeliveryRecord, "change", deferred.pk)).content.decode()
    assert "Release at" in page


def test_recipient_page_links_to_its_deliveries(admin_client, objs):
    recipient = objs[Recipient]
    page = admin_client.get(url(Recipient, "change", recipient.pk)).content.decode()
    assert f"{url(DeliveryRecord, 'changelist')}?recipient__id__exact={recipient.pk}" in page
    assert "marketing" in page  # the opt-out inline


# --- channel accounts ------------------------------------------------------------------


def test_channel_account_pages_never_show_the_secret(admin_client, objs):
    account = objs[ChannelAccount]
    for page_url in (
        url(ChannelAccount, "changelist"),
        url(ChannelAccount, "change", account.pk),
        url(ChannelAccount, "history", account.pk),
    ):
        page = admin_client.get(page_url).content.decode()
        assert SECRET not in page
    page = admin_client.get(url(ChannelAccount, "change", account.pk)).content.decode()
    assert "********" in page and "127.0.0.1:9/hook" in page


def test_masked_secret_sent_back_keeps_the_stored_one(admin_client, objs):
    account = objs[ChannelAccount]
    change = url(ChannelAccount, "change", account.pk)
    data = form_data(admin_client.get(change))
    assert "********" in data["config"][0]
    data["name"] = ["ops robot"]
    response = admin_client.post(change, data)
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "ops robot"
    assert account.config == {"url": "http://127.0.0.1:9/hook", "secret": SECRET}

    data["config"] = ['{"url": "http://127.0.0.1:9/new", "secret": "brand-new"}']
    assert admin_client.post(change, data).status_code == 302
    account.refresh_from_db()
    assert account.config == {"url": "http://127.0.0.1:9/new", "secret": "brand-new"}


def test_channel_account_form_validates_provider_and_config(admin_client, objs):
    add = url(ChannelAccount, "add")
    data = form_data(admin_client.get(add))
    data.update(
        {
            "name": ["hook"],
            "channel": ["email"],
            "provider": ["webhook"],
            "config": ['{"url": "http://127.0.0.1:9/x"}'],
            "weight": ["1"],
        }
    )
    response = admin_client.post(add, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    data.update({"channel": ["webhook"], "config": ['{"secret": "********"}']})
    response = admin_client.post(add, data)
    assert response.status_code == 200
    assert "config" in response.context["adminform"].form.errors
    assert not ChannelAccount.objects.filter(name="hook").exists()


def test_changelist_shows_circuit_status(admin_client, objs):
    account = objs[ChannelAccount]
    ChannelAccount.objects.filter(pk=account.pk).update(
        consecutive_failures=5, paused_until=timezone.now() + dt.timedelta(minutes=5)
    )
    page = admin_client.get(url(ChannelAccount, "changelist")).content.decode()
    assert "paused until" in page


def test_test_connection_action_reports_success_and_failure(admin_client, objs, smtp_server):
    good = ChannelAccount.objects.create(
        channel="email",
        provider="smtp",
        name="local smtp",
        config={"host": smtp_server.host, "port": smtp_server.port, "password": SECRET},
    )
    closed = ChannelAccount.objects.create(
        channel="email",
        provider="smtp",
        name="dead smtp",
        config={"host": "127.0.0.1", "port": 9, "timeout": 2, "password": SECRET},
    )
    response = admin_client.post(
        url(ChannelAccount, "changelist"),
        {"action": "test_connection", "_selected_action": [good.pk, closed.pk]},
    )
    assert response.status_code == 302
    notes = flash(response)
    assert any(m.startswith("local smtp") and "connected to" in m for m in notes)
    assert any(m.startswith("dead smtp") and "connection" in m.lower() for m in notes)
    assert not any(SECRET in m for m in notes)

    response = admin_client.get(url(ChannelAccount, "test_connection_detail", good.pk))
    assert response.status_code == 302
    assert any("connected to" in m for m in flash(response))


# --- API clients -----------------------------------------------------------------------


def test_create_key_button_shows_the_raw_key_once(admin_client, objs):
    client = objs[ApiClient]
    before = set(client.keys.values_list("pk", flat=True))
    response = admin_client.post(
        url(ApiClient, "create_key_action", client.pk), {"_form_submitted": "1"}, follow=True
    )
    assert response.status_code == 200
    new = client.keys.exclude(pk__in=before).get()
    raw = next(
        w for m in response.context["messages"] for w in str(m).split() if w.startswith("mc_")
    )
    assert ApiKey.hash(raw) == new.key_hash
    assert raw in response.content.decode()
    # Only the hash is kept: the next page view no longer shows it.
    again = admin_client.get(url(ApiClient, "change", client.pk)).content.decode()
    assert raw not in again and new.prefix in again
    client.refresh_from_db()
    assert client.scopes == ["send"]


def test_api_client_scopes_are_checkboxes(admin_client, db):
    add = url(ApiClient, "add")
    data = form_data(admin_client.get(add))
    data.update({"name": ["billing"], "scopes": ["send", "manage"]})
    assert admin_client.post(add, data).status_code == 302
    assert sorted(ApiClient.objects.get(name="billing").scopes) == ["manage", "send"]


# --- quiet hours and recurring sends ---------------------------------------------------


def test_quiet_hours_and_recurring_forms_validate(admin_client, objs):
    add = url(QuietHours, "add")
    data = form_data(admin_client.get(add))
    data.update(
        {
            "name": ["late"],
            "start": ["23:00"],
            "end": ["07:00"],
            "timezone": ["Mars/Olympus"],
            "categories": ["marketing"],
        }
    )
    response = admin_client.post(add, data)
    assert response.status_code == 200
    assert "timezone" in response.context["adminform"].form.errors
    data["timezone"] = ["Europe/Berlin"]
    assert admin_client.post(add, data).status_code == 302
    assert QuietHours.objects.get(name="late").categories == ["marketing"]

    recurring = objs[RecurringSend]
    change = url(RecurringSend, "change", recurring.pk)
    data = form_data(admin_client.get(change))
    data["minute"] = ["99"]
    response = admin_client.post(change, data)
    assert response.status_code == 200
    assert "crontab" in str(response.context["adminform"].form.errors)
    data["minute"] = ["30"]
    assert admin_client.post(change, data).status_code == 302
    recurring.refresh_from_db()
    assert recurring.crontab_expr == "30 9 * * *"
