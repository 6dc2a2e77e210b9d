"""Accounts in the send path: weighted routing, failover, circuit breaker, fallback
channel, provider callbacks and click tracking. Sending runs in-process here against
real loopback servers; tests/e2e covers the same through real workers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.models import ChannelAccount, DeliveryRecord, Interaction
from channels_app.sending import send_chunk
from tasks_app.models import MessageTask
from tasks_app.pipeline import plan_deliveries
from tasks_app.services import send_message
from tests import factories
from tests.servers import HTTPServer, Reply

pytestmark = pytest.mark.django_db


def create_and_plan(template="order_shipped", recipients=("u-1001",), channels=None, **kw):
    task, _ = send_message(
        client=None,
        template=template,
        recipients=list(recipients),
        params={"order_no": "A1"},
        channels=channels,
        **kw,
    )
    task.start()
    task.save()
    plan_deliveries(task)
    return task


def send_all(task, channel):
    ids = list(
        DeliveryRecord.objects.filter(task=task, channel=channel, state="queued").values_list(
            "id", flat=True
        )
    )
    return send_chunk(channel, ids)


@pytest.fixture
def two_servers():
    a, b = HTTPServer().start(), HTTPServer().start()
    yield a, b
    a.stop()
    b.stop()


def test_weighted_routing_follows_weights(http_server):
    from channels_app.routing import routes_for

    factories.webhook_account(http_server, name="heavy", weight=3)
    factories.webhook_account(http_server, name="light", weight=1)
    factories.webhook_account(http_server, name="off", weight=5, enabled=False)
    firsts = [routes_for("webhook")[0].account.name for _ in range(400)]
    assert set(firsts) == {"heavy", "light"}
    # 3:1 -> expect 300; binomial(400, .75) lies in [255, 345] with p > 0.99999.
    assert 255 <= firsts.count("heavy") <= 345, firsts.count("heavy")
    # every route list holds each enabled account once: the rest are failover targets
    assert sorted(r.account.name for r in routes_for("webhook")) == ["heavy", "light"]


def test_failover_to_next_account_on_5xx(two_servers):
    bad, good = two_servers
    bad.default = Reply(503, {"error": "down"})
    factories.published_template(channels=("webhook",))
    factories.recipients(1)
    factories.webhook_account(bad, name="bad")
    factories.webhook_account(good, name="good")
    tasks = [create_and_plan(channels=["webhook"]) for _ in range(10)]
    for t in tasks:
        send_all(t, "webhook")
    rows = DeliveryRecord.objects.filter(task__in=tasks)
    assert set(rows.values_list("state", "attempts")) == {("sent", 1)}
    assert len(good.requests) == 10
    good_id = ChannelAccount.objects.get(name="good").pk
    assert set(rows.values_list("account_id", flat=True)) == {good_id}
    # those that tried the bad account first logged that attempt
    failed_over = [d for d in rows if len(d.attempt_log) == 2]
    assert len(failed_over) == len(bad.requests)
    assert all("HTTP 503" in d.attempt_log[0]["error"] for d in failed_over)
    assert all(MessageTask.objects.get(pk=t.pk).state == "completed" for t in tasks)


def test_circuit_breaker_opens_and_closes(two_servers):
    bad, good = two_servers
    bad.default = Reply(500, {"error": "down"})
    factories.published_template(channels=("webhook",))
    factories.recipients(1)
    acc_bad = factories.webhook_account(bad, name="bad", weight=1000)
    factories.webhook_account(good, name="good", weight=1)
    # Five failed attempts in a row open the circuit on the (heavily weighted) bad account.
    for _ in range(5):
        send_all(create_and_plan(channels=["webhook"]), "webhook")
    acc_bad.refresh_from_db()
    assert acc_bad.consecutive_failures >= 5 and acc_bad.circuit_open
    calls = len(bad.requests)
    for _ in range(5):
        send_all(create_and_plan(channels=["webhook"]), "webhook")
    assert len(bad.requests) == calls  # paused: the good account is tried first
    # Cool-down over and the provider recovered: the account is used again and resets.
    ChannelAccount.objects.filter(pk=acc_bad.pk).update(
        paused_until=timezone.now() - timedelta(seconds=1)
    )
    bad.default = Reply(200, {"ok": True})
    send_all(create_and_plan(channels=["webhook"]), "webhook")
    acc_bad.refresh_from_db()
    assert len(bad.requests) == calls + 1
    assert acc_bad.consecutive_failures == 0 and not acc_bad.circuit_open


def test_pinned_account_is_used(two_servers):
    a, b = two_servers
    factories.recipients(1)
    acc_b = factories.webhook_account(b, name="ops robot")
    factories.webhook_account(a, name="other", weight=100)
    from templates_app.services import create_template, publish_template

    t = create_template(
        code="alert",
        name="Alert",
        category="alert",
        contents=[{"channel": "webhook", "subject": "CPU", "body": "high", "account_id": acc_b.pk}],
    )
    publish_template(template=t)
    for _ in range(3):
        task = create_and_plan(template="alert")
        send_all(task, "webhook")
    assert len(b.requests) == 3 and not a.requests


def test_rate_limit_reschedules_rather_than_drops(http_server):
    factories.published_template(channels=("webhook",))
    factories.recipients(1)
    factories.webhook_account(http_server, rate_limit_per_sec=2)
    tasks = [create_and_plan(channels=["webhook"]) for _ in range(6)]
    ids = list(DeliveryRecord.objects.filter(task__in=tasks).values_list("id", flat=True))

    counts = send_chunk("webhook", ids)
    # bucket of 2 plus 2/s for at most ~2 s of waiting: some sent, the rest requeued
    assert counts["sent"] + counts["rate_limited"] == 6
    assert counts["rate_limited"] >= 1
    limited = DeliveryRecord.objects.filter(id__in=ids, state="queued")
    assert limited.count() == counts["rate_limited"]
    assert set(limited.values_list("attempts", flat=True)) == {0}  # not counted as attempts
    assert all(d.not_before for d in limited)


def test_fallback_channel_on_permanent_failure(http_server):
    http_server.default = Reply(400, {"error": "bad"})
    factories.recipients(1)
    factories.webhook_account(http_server)
    from templates_app.services import create_template, publish_template

    t = create_template(
        code="fb",
        name="Fallback",
        params_schema={},
        contents=[
            {"channel": "webhook", "subject": "S", "body": "B", "fallback_channel": "inapp"},
            {"channel": "inapp", "subject": "S", "body": "B"},
        ],
    )
    publish_template(template=t)
    task = create_and_plan(template="fb", channels=["webhook"])
    send_all(task, "webhook")
    primary = DeliveryRecord.objects.get(task=task, channel="webhook")
    assert primary.state == "failed"
    fallback = DeliveryRecord.objects.get(task=task, channel="inapp")
    assert fallback.kind == "fallback" and fallback.parent_id == primary.pk
    assert fallback.recipient.external_id == "u-1001"
    task.refresh_from_db()
    assert task.state == "pushing"  # the fallback keeps it open
    plan_deliveries(task)
    send_all(task, "inapp")
    task.refresh_from_db()
    assert task.state == "completed"


def test_fallback_for_person_channel(http_server, smtp_server):
    factories.recipients(2)
    smtp_server.reject_addresses.add("user1@example.com")
    factories.smtp_account(smtp_server)
    from templates_app.services import create_template, publish_template

    t = create_template(
        code="fb2",
        name="Fallback",
        params_schema={},
        contents=[
            {"channel": "email", "subject": "S", "body": "B", "fallback_channel": "inapp"},
            {"channel": "inapp", "subject": "S", "body": "B"},
        ],
    )
    publish_template(template=t)
    task = create_and_plan(template="fb2", recipients=["u-1001", "u-1002"], channels=["email"])
    send_all(task, "email")
    assert dict(
        DeliveryRecord.objects.filter(task=task, channel="email").values_list("address", "state")
    ) == {"user1@example.com": "failed", "user2@example.com": "sent"}
    fb = DeliveryRecord.objects.get(task=task, kind="fallback")
    assert fb.channel == "inapp" and fb.recipient.external_id == "u-1001"
    assert fb.parent.address == "user1@example.com"


# --- callbacks -------------------------------------------------------------------------


def test_email_callback_marks_delivered_and_bounced(api, smtp_server):
    factories.published_template(channels=("email",))
    factories.recipients(2)
    account = factories.smtp_account(smtp_server, callback_token="tok")
    task = create_and_plan(recipients=["u-1001", "u-1002"], channels=["email"])
    send_all(task, "email")
    d1, d2 = DeliveryRecord.objects.filter(task=task).order_by("id")
    url = f"/api/v1/callbacks/{account.pk}?token=tok"
    events = [
        {"event_type": "delivered", "message_id": d1.provider_message_id},
        {
            "event_type": "bounced",
            "message_id": d2.provider_message_id,
            "description": "550 no such user",
        },
        {"event_type": "delivered", "message_id": "<unknown@x>"},
    ]
    r = api.generic("POST", url, json.dumps(events), content_type="application/json")
    assert r.status_code == 200, r.content
    assert r.json() == {"received": 3, "matched": 2, "unknown": ["<unknown@x>"]}
    d1.refresh_from_db()
    d2.refresh_from_db()
    assert d1.state == "delivered" and d1.delivered_at
    assert d2.state == "failed" and "550" in d2.error
    assert set(Interaction.objects.values_list("kind", flat=True)) == {"delivered", "bounced"}


def test_callback_with_bad_token_changes_nothing(anon, smtp_server):
    factories.published_template(channels=("email",))
    factories.recipients(1)
    account = factories.smtp_account(smtp_server, callback_token="tok")
    task = create_and_plan(channels=["email"])
    send_all(task, "email")
    d = DeliveryRecord.objects.get(task=task)
    body = json.dumps({"event_type": "delivered", "message_id": d.provider_message_id})
    r = anon.generic(
        "POST", f"/api/v1/callbacks/{account.pk}?token=wrong", body, content_type="application/json"
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    d.refresh_from_db()
    assert d.state == "sent" and not Interaction.objects.exists()
    r = anon.generic(
        "POST", "/api/v1/callbacks/999999?token=tok", body, content_type="application/json"
    )
    assert r.status_code == 404
    r = anon.generic(
        "POST",
        f"/api/v1/callbacks/{account.pk}?token=tok",
        "{oops",
        content_type="application/json",
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_twilio_callback_signature(anon):
    factories.published_template(channels=("sms",), schema={})
    factories.recipients(1)
    account = ChannelAccount.objects.create(
        channel="sms",
        provider="twilio_sms",
        name="twilio",
        config={"account_sid": "AC123", "auth_token": "twtoken", "from_number": "+15550001111"},
    )
    task, _ = send_message(
        client=None, template="order_shipped", recipients=["u-1001"], channels=["sms"]
    )
    DeliveryRecord.objects.filter(task=task).update(
        state="sent", provider_message_id="SM0001", account=account
    )
    url = f"http://testserver/api/v1/callbacks/{account.pk}"
    params = {"MessageSid": "SM0001", "MessageStatus": "delivered", "AccountSid": "AC123"}
    r = anon.post(url, params, HTTP_X_TWILIO_SIGNATURE="bogus")
    assert r.status_code == 401
    assert DeliveryRecord.objects.get(task=task).state == "sent"
    r = anon.post(url, params, HTTP_X_TWILIO_SIGNATURE=twilio_signature("twtoken", url, params))
    assert r.status_code == 200, r.content
    assert r.content == b"<Response/>" and r["X-Msgcenter-Matched"] == "1"
    assert DeliveryRecord.objects.get(task=task).state == "delivered"


# --- clicks ----------------------------------------------------------------------------


def test_click_tracking_wraps_links_and_redirects(client, smtp_server):
    from templates_app.services import create_template, publish_template

    factories.recipients(1)
    factories.smtp_account(smtp_server)
    t = create_template(
        code="promo",
        name="Promo",
        params_schema={},
        contents=[
            {
                "channel": "email",
                "subject": "Sale",
                "body": "See https://shop.example.com/sale now",
                "body_html": '<a href="https://shop.example.com/sale?x=1">Sale</a>',
                "extra": {"track_clicks": True},
            }
        ],
    )
    publish_template(template=t)
    task = create_and_plan(template="promo", channels=["email"])
    send_all(task, "email")
    mail = smtp_server.messages[0]
    html, text = mail.part("text/html"), mail.part("text/plain")
    assert "shop.example.com" not in html and "/t/" in html
    link = html.split('href="')[1].split('"')[0]
    path = link[link.index("/t/") :]
    r = client.get(path)
    assert r.status_code == 302 and r["Location"] == "https://shop.example.com/sale?x=1"
    d = DeliveryRecord.objects.get(task=task)
    click = Interaction.objects.get(delivery=d, kind="clicked")
    assert click.url == "https://shop.example.com/sale?x=1"
    assert "/t/" in text and "shop.example.com" not in text
    assert client.get(path[:-3] + "xyz").status_code == 404


@pytest.mark.parametrize(
    "provider,config,body,ack",
    [
        (
            "aliyun_sms",
            {"access_key_id": "k", "access_key_secret": "s", "sign_name": "Shop"},
            [{"biz_id": "BIZ1", "success": True, "err_code": "DELIVERED", "phone_number": "1"}],
            b'"code"',
        ),
        (
            "tencent_sms",
            {"secret_id": "k", "secret_key": "s", "sdk_app_id": "1400000000", "sign_name": "Shop"},
            [{"sid": "BIZ1", "report_status": "SUCCESS", "mobile": "1"}],
            b'"result"',
        ),
    ],
)
def test_sms_receipts_through_the_endpoint(anon, provider, config, body, ack):
    factories.published_template(channels=("sms",), schema={})
    factories.recipients(1)
    account = ChannelAccount.objects.create(
        channel="sms", provider=provider, name=provider, config={**config, "callback_token": "cb"}
    )
    task, _ = send_message(
        client=None, template="order_shipped", recipients=["u-1001"], channels=["sms"]
    )
    DeliveryRecord.objects.filter(task=task).update(
        state="sent", provider_message_id="BIZ1", account=account
    )
    url = f"/api/v1/callbacks/{account.pk}"
    r = anon.generic("POST", url + "?token=nope", json.dumps(body), content_type="application/json")
    assert r.status_code == 401
    assert DeliveryRecord.objects.get(task=task).state == "sent"
    r = anon.generic("POST", url + "?token=cb", json.dumps(body), content_type="application/json")
    assert r.status_code == 200 and ack in r.content
    assert DeliveryRecord.objects.get(task=task).state == "delivered"
    assert Interaction.objects.filter(kind="delivered").count() == 1
