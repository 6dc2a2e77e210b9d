"""Twilio SMS against a loopback Messages resource, and signed status callbacks."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from django.test import RequestFactory

from channels_app.channels.base import TransportError
from channels_app.channels.twilio import TwilioSMSProvider
from tests.servers import Reply

from .fakes import closed_port_url, outbound, twilio_signature

SID = "AC" + "1" * 32


def sms(twilio, **config) -> TwilioSMSProvider:
    return TwilioSMSProvider(
        {
            "account_sid": SID,
            "auth_token": "twilio-token",
            "from_number": "+15005550006",
            "base_url": twilio.url,
            **config,
        }
    )


def test_send_with_from_number(twilio):
    result = sms(twilio).send(outbound(41, address="+14155550100"))

    assert result.ok and result.provider_message_id == f"SM{1:032x}"
    assert twilio.violations == []
    form = parse_qs(twilio.requests[0].body.decode())
    assert form == {"To": ["+14155550100"], "From": ["+15005550006"], "Body": ["db-1 is at 91%"]}


def test_send_with_messaging_service_and_status_callback(twilio):
    provider = sms(
        twilio,
        from_number="",
        messaging_service_sid="MG" + "2" * 32,
        callback_url="https://msg.example.com/api/v1/callbacks/5",
    )
    assert provider.send(outbound(address="+14155550100")).ok

    form = parse_qs(twilio.requests[0].body.decode())
    assert form["MessagingServiceSid"] == ["MG" + "2" * 32] and "From" not in form
    assert form["StatusCallback"] == ["https://msg.example.com/api/v1/callbacks/5"]
    assert twilio.violations == []


def test_wrong_auth_token_is_permanent(twilio):
    with pytest.raises(TransportError) as err:
        sms(twilio, auth_token="wrong").send(outbound(address="+14155550100"))
    assert err.value.permanent and "20003" in err.value.message


def test_invalid_number_is_permanent(twilio):
    with pytest.raises(TransportError) as err:
        sms(twilio).send(outbound(address="0800-not-e164"))
    assert err.value.permanent and "21211" in err.value.message


@pytest.mark.parametrize(
    ("reply", "permanent", "retry_after"),
    [
        (
            Reply(
                429,
                {"code": 20429, "message": "Too Many Requests", "status": 429},
                {"Retry-After": "2"},
            ),
            False,
            2.0,
        ),
        (Reply(503, {"code": 20503, "message": "Service Unavailable", "status": 503}), False, None),
        (
            Reply(
                400,
                {
                    "code": 21610,
                    "message": "Attempt to send to unsubscribed recipient",
                    "status": 400,
                },
            ),
            True,
            None,
        ),
    ],
)
def test_error_classes(twilio, reply, permanent, retry_after):
    twilio.fail_next(reply)
    result = sms(twilio).send_batch([outbound(address="+14155550100")])[0]
    assert not result.ok and result.permanent is permanent
    assert result.retry_after == retry_after


def test_unreachable_is_transient_and_test_connection(twilio):
    with pytest.raises(TransportError) as err:
        sms(twilio, base_url=closed_port_url()).send(outbound(address="+14155550100"))
    assert err.value.permanent is False

    assert sms(twilio).test_connection() == "account 'msgcenter test' is active"
    with pytest.raises(TransportError):
        sms(twilio, auth_token="wrong").test_connection()


def test_validate_config_needs_a_sender():
    assert "from_number" in TwilioSMSProvider.validate_config(
        {"account_sid": SID, "auth_token": "t"}
    )
    assert (
        TwilioSMSProvider.validate_config(
            {"account_sid": SID, "auth_token": "t", "messaging_service_sid": "MG1"}
        )
        == {}
    )


CALLBACK = {
    "MessageSid": "SM" + "a" * 32,
    "SmsSid": "SM" + "a" * 32,
    "AccountSid": SID,
    "From": "+15005550006",
    "To": "+14155550100",
    "ApiVersion": "2010-04-01",
}


def callback_request(status: str, *, token: str = "twilio-token", **extra):
    params = {**CALLBACK, "MessageStatus": status, "SmsStatus": status, **extra}
    url = "http://testserver/api/v1/callbacks/5"
    return RequestFactory().post(
        "/api/v1/callbacks/5",
        data=params,
        headers={"X-Twilio-Signature": twilio_signature(token, url, params)},
    )


@pytest.mark.parametrize(
    ("status", "mapped"),
    [
        ("delivered", "delivered"),
        ("undelivered", "failed"),
        ("failed", "failed"),
        ("sent", "sent"),
    ],
)
def test_status_callback_maps_message_status(twilio, status, mapped):
    (event,) = sms(twilio).parse_callback(callback_request(status))
    assert event.provider_message_id == "SM" + "a" * 32
    assert event.status == mapped


def test_status_callback_carries_error_code_and_ignores_queued(twilio):
    (event,) = sms(twilio).parse_callback(callback_request("undelivered", ErrorCode="30003"))
    assert event.error == "Twilio error 30003"
    assert sms(twilio).parse_callback(callback_request("queued")) == []


def test_status_callback_rejects_a_bad_signature(twilio):
    with pytest.raises(PermissionError):
        sms(twilio).parse_callback(callback_request("delivered", token="someone-else"))
    tampered = callback_request("failed")
    tampered.POST = tampered.POST.copy()
    tampered.POST["MessageStatus"] = "delivered"
    with pytest.raises(PermissionError):
        sms(twilio).parse_callback(tampered)


def test_status_callback_uses_the_public_url_behind_a_proxy(twilio):
    public = "https://msg.example.com/api/v1/callbacks/5"
    params = {**CALLBACK, "MessageStatus": "delivered"}
    request = RequestFactory().post(
        "/api/v1/callbacks/5",
        data=params,
        headers={"X-Twilio-Signature": twilio_signature("twilio-token", public, params)},
    )
    with pytest.raises(PermissionError):
        sms(twilio).parse_callback(request)
    assert sms(twilio, callback_url=public).parse_callback(request)[0].status == "delivered"
