"""Preferences API, and the signed one-click unsubscribe link (RFC 8058) carried by email
through a real SMTP server."""

from __future__ import annotations

from collections import defaultdict

import pytest
from rest_framework.test import APIClient

from channels_app.models import DeliveryRecord, Interaction
from channels_app.sending import send_chunk
from tasks_app import pipeline
from tasks_app.models import Preference
from tasks_app.services import send_message
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    return factories.recipients(2)


def test_get_and_replace_opt_outs(api, people):
    url = "/api/v1/recipients/u-1001/preferences"
    assert api.get(url).json() == {"recipient": "u-1001", "opt_outs": []}
    r = api.put(
        url,
        {
            "opt_outs": [
                {"category": "marketing"},
                {"channel": "sms"},
                {"category": "notification", "channel": "email"},
            ]
        },
        format="json",
    )
    assert r.status_code == 200, r.json()
    got = [(o["category"], o["channel"]) for o in r.json()["opt_outs"]]
    assert got == [("", "sms"), ("marketing", ""), ("notification", "email")]
    # PUT replaces: what is left out is opted in again.
    r = api.put(url, {"opt_outs": [{"category": "marketing"}]}, format="json")
    assert [(o["category"], o["channel"]) for o in r.json()["opt_outs"]] == [("marketing", "")]
    assert Preference.objects.filter(recipient__external_id="u-1001").count() == 1
    assert api.put(url, {"opt_outs": []}, format="json").json()["opt_outs"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"opt_outs": [{"category": "spam"}]}, "category"),
        ({"opt_outs": [{"channel": "pigeon"}]}, "channel"),
        ({"opt_outs": [{"category": "verification"}]}, "category"),
        ({"opt_outs": "marketing"}, "opt_outs"),
        ({}, "opt_outs"),
    ],
)
def test_bad_preferences_are_400(api, people, body, field):
    r = api.put("/api/v1/recipients/u-1001/preferences", body, format="json")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_request"
    assert field in str(r.json()["error"])


def test_preferences_of_unknown_recipient_404_and_need_a_key(api, anon, people):
    assert api.get("/api/v1/recipients/nobody/preferences").status_code == 404
    assert anon.get("/api/v1/recipients/u-1001/preferences").status_code == 401


def send_email(template: str, to: str = "u-1001", order_no: str = "E1") -> DeliveryRecord:
    task, _ = send_message(
        client=None,
        template=template,
        recipients=[to],
        params={"order_no": order_no},
        channels=["email"],
    )
    pipeline.plan_task(str(task.pk))
    by_channel = defaultdict(list)
    for pk, channel in DeliveryRecord.objects.filter(state="queued").values_list("id", "channel"):
        by_channel[channel].append(pk)
    for channel, ids in by_channel.items():
        send_chunk(channel, ids)
    return DeliveryRecord.objects.get(task=task)


def test_email_carries_one_click_unsubscribe_and_it_works(people, smtp_server, settings):
    settings.MSGCENTER = {**settings.MSGCENTER, "DEFAULT_QUIET_HOURS": "off"}
    factories.published_template("promo", channels=("email",), category="marketing")
    factories.smtp_account(smtp_server)
    d = send_email("promo")
    assert d.state == "sent"
    mail = smtp_server.messages[0].message
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = mail["List-Unsubscribe"].replace("\r\n", "").strip().strip("<>")  # unfolded
    assert url.startswith(settings.PUBLIC_BASE_URL + "/u/")
    path = url[len(settings.PUBLIC_BASE_URL) :]

    browser = APIClient(enforce_csrf_checks=True)
    page = browser.get(path)  # a link scanner or a person opening the link
    assert page.status_code == 200 and b'<form method="post">' in page.content
    assert not Preference.objects.exists()

    # The mail client's one-click POST (RFC 8058): no cookies, no CSRF token.
    done = browser.post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert done.status_code == 200 and b"unsubscribed" in done.content
    assert list(
        Preference.objects.values_list("recipient__external_id", "category", "channel", "opted_out")
    ) == [("u-1001", "marketing", "email", True)]
    interaction = Interaction.objects.get(delivery=d, kind="unsubscribed")
    assert interaction.payload["source"] == "one-click"
    browser.post(path)  # a second click changes nothing
    assert Interaction.objects.filter(kind="unsubscribed").count() == 1

    # The next marketing email to this recipient is skipped; another one still gets it.
    later = send_email("promo", order_no="E2")
    assert (later.state, later.reason) == ("skipped", "opted_out")
    assert send_email("promo", to="u-1002", order_no="E2").state == "sent"


def test_verification_email_has_no_unsubscribe_header(people, smtp_server):
    factories.published_template("otp", channels=("email",), category="verification")
    factories.smtp_account(smtp_server)
    d = send_email("otp")
    assert d.state == "sent"
    assert smtp_server.messages[0].message["List-Unsubscribe"] is None
    assert "unsubscribe_url" not in d.content


def test_tampered_token_is_a_404_page(people, client):
    factories.published_template("promo", channels=("email",), category="marketing")
    r = client.get("/u/not-a-real-token")
    assert r.status_code == 404 and b"not valid" in r.content
    r = client.post("/u/not-a-real-token")
    assert r.status_code == 404
    assert not Preference.objects.exists()
