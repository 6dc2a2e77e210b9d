"""Alibaba Cloud SMS against a loopback RPC endpoint that verifies the signature."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
from django.test import RequestFactory

from channels_app.channels.aliyun import AliyunSMSProvider
from channels_app.channels.base import ConfigError, TransportError
from tests.servers import Reply

from .fakes import closed_port_url, outbound

EXTRA = {"template_code": "SMS_15305", "template_params": {"code": "4821", "product": "云"}}


def sms(aliyun_sms, **config) -> AliyunSMSProvider:
    return AliyunSMSProvider(
        {
            "access_key_id": "LTAI-test",
            "access_key_secret": "aliyun-secret",
            "sign_name": "msgcenter",
            "base_url": aliyun_sms.url,
            "callback_token": "cb-token",
            **config,
        }
    )


def test_send_sms_signed_request(aliyun_sms):
    result = sms(aliyun_sms).send(outbound(21, address="13800000000", extra=EXTRA))

    assert result.ok and result.provider_message_id == "900619746936498440^0"
    assert aliyun_sms.violations == []
    (req,) = aliyun_sms.requests

    params = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
    assert params["Action"] == "SendSms" and params["Version"] == "2017-05-25"
    assert params["PhoneNumbers"] == "13800000000"
    assert params["SignName"] == "msgcenter" and params["TemplateCode"] == "SMS_15305"
    assert json.loads(params["TemplateParam"]) == {"code": "4821", "product": "云"}
    assert params["OutId"] == "21"


def test_sign_name_from_extra_overrides_account(aliyun_sms):
    aliyun_sms.signs.add("other-sign")
    try:
        sms(aliyun_sms).send(
            outbound(address="13800000000", extra={**EXTRA, "sign_name": "other-sign"})
        )
    finally:
        aliyun_sms.signs.discard("other-sign")

    assert parse_qs(aliyun_sms.requests[0].body.decode())["SignName"] == ["other-sign"]


def test_wrong_secret_is_rejected_as_permanent(aliyun_sms):
    with pytest.raises(TransportError) as err:
        sms(aliyun_sms, access_key_secret="wrong").send(
            outbound(address="13800000000", extra=EXTRA)
        )
    assert err.value.permanent and "SignatureDoesNotMatch" in err.value.message
    assert aliyun_sms.violations == ["POST /: Signature does not match"]


@pytest.mark.parametrize(
    ("code", "permanent"),
    [
        ("isv.BUSINESS_LIMIT_CONTROL", False),
        ("Throttling.User", False),
        ("isv.AMOUNT_NOT_ENOUGH", True),
        ("isv.MOBILE_NUMBER_ILLEGAL", True),
    ],
)
def test_error_classes(aliyun_sms, code, permanent):
    aliyun_sms.fail_next(
        Reply(
            200 if code.startswith("isv.") else 400,
            {"Code": code, "Message": "...", "RequestId": "r"},
        )
    )
    result = sms(aliyun_sms).send_batch([outbound(address="13800000000", extra=EXTRA)])[0]
    assert not result.ok and result.permanent is permanent and code in result.error


def test_server_error_and_unreachable_are_transient(aliyun_sms):
    aliyun_sms.fail_next(Reply(503, {"Code": "ServiceUnavailable", "Message": "busy"}))
    assert sms(aliyun_sms).send_batch([outbound(address="138", extra=EXTRA)])[0].permanent is False
    with pytest.raises(TransportError) as err:
        sms(aliyun_sms, base_url=closed_port_url()).send(outbound(address="138", extra=EXTRA))
    assert err.value.permanent is False


def test_unknown_template_is_permanent_and_missing_template_is_config_error(aliyun_sms):
    with pytest.raises(TransportError) as err:
        sms(aliyun_sms).send(outbound(address="13800000000", extra={"template_code": "SMS_NOPE"}))
    assert err.value.permanent and "isv.SMS_TEMPLATE_ILLEGAL" in err.value.message

    with pytest.raises(ConfigError):
        sms(aliyun_sms).send(outbound(address="13800000000", extra={}))


def test_test_connection_queries_the_sign(aliyun_sms):
    assert "approved" in sms(aliyun_sms).test_connection()
    with pytest.raises(TransportError):
        sms(aliyun_sms, access_key_id="LTAI-other").test_connection()


REPORTS = [
    {
        "phone_number": "13800000000",
        "send_time": "2026-11-27 10:00:00",
        "report_time": "2026-11-27 10:00:05",
        "success": True,
        "err_code": "DELIVERED",
        "err_msg": "用户接收成功",
        "sms_size": "1",
        "biz_id": "900619746936498440^0",
        "out_id": "21",
    },
    {
        "phone_number": "13800000001",
        "send_time": "2026-11-27 10:00:00",
        "report_time": "2026-11-27 10:00:06",
        "success": False,
        "err_code": "MK:0001",
        "err_msg": "用户停机",
        "sms_size": "1",
        "biz_id": "900619746936498441^0",
        "out_id": "22",
    },
]


def test_status_report_callback(aliyun_sms):
    request = RequestFactory().post(
        "/api/v1/callbacks/3?token=cb-token",
        data=json.dumps(REPORTS),
        content_type="application/json",
    )

    events = sms(aliyun_sms).parse_callback(request)

    assert [(e.provider_message_id, e.status) for e in events] == [
        ("900619746936498440^0", "delivered"),
        ("900619746936498441^0", "failed"),
    ]
    assert events[1].error == "MK:0001: 用户停机"
    assert events[0].payload["out_id"] == "21"


@pytest.mark.parametrize("query", ["?token=wrong", ""])
def test_status_report_callback_rejects_bad_token(aliyun_sms, query):
    request = RequestFactory().post(
        f"/api/v1/callbacks/3{query}", data=json.dumps(REPORTS), content_type="application/json"
    )
    with pytest.raises(PermissionError):
        sms(aliyun_sms).parse_callback(request)
    request = RequestFactory().post(
        "/api/v1/callbacks/3?token=cb-token",
        data=json.dumps(REPORTS),
        content_type="application/json",
    )
    with pytest.raises(PermissionError):
        sms(aliyun_sms, callback_token="").parse_callback(request)


def test_status_report_callback_rejects_garbage(aliyun_sms):
    request = RequestFactory().post(
        "/cb?token=cb-token", data="not json", content_type="application/json"
    )
    with pytest.raises(ValueError):
        sms(aliyun_sms).parse_callback(request)
