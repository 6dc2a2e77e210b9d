"""Tencent Cloud SMS against a loopback API 3.0 endpoint that verifies TC3 signatures."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory

from channels_app.channels.base import ConfigError, TransportError
from channels_app.channels.tencent import TencentSMSProvider
from tests.servers import Reply

from .fakes import closed_port_url, header, outbound

EXTRA = {"template_id": "449739", "template_params": ["4821", 5]}


def sms(tencent_sms, **config) -> TencentSMSProvider:
    return TencentSMSProvider(
        {
            "secret_id": "AKID-test",
            "secret_key": "tencent-key",
            "sdk_app_id": "1400006666",
            "sign_name": "msgcenter",
            "base_url": tencent_sms.url,
            "callback_token": "cb-token",
            **config,
        }
    )


def test_send_sms_signed_request(tencent_sms):
    result = sms(tencent_sms).send(outbound(31, address="+8613800000000", extra=EXTRA))

    assert result.ok and result.provider_message_id == "2640:1"
    assert tencent_sms.violations == []
    (req,) = tencent_sms.requests
    assert header(req, "X-TC-Action") == "SendSms"
    assert header(req, "X-TC-Region") == "ap-guangzhou"
    assert json.loads(req.body) == {
        "PhoneNumberSet": ["+8613800000000"],
        "SmsSdkAppId": "1400006666",
        "SignName": "msgcenter",
        "TemplateId": "449739",
        "TemplateParamSet": ["4821", "5"],
    }


def test_wrong_secret_key_is_rejected_as_permanent(tencent_sms):
    with pytest.raises(TransportError) as err:
        sms(tencent_sms, secret_key="wrong").send(outbound(address="+8613800000000", extra=EXTRA))
    assert err.value.permanent and "AuthFailure.SignatureFailure" in err.value.message
    assert tencent_sms.violations == ["POST /: signature does not match"]


def test_batch_groups_identical_content_and_reads_each_status(tencent_sms):
    tencent_sms.invalid_numbers.add("13800000002")
    tencent_sms.limited_numbers.add("13800000003")
    messages = [outbound(i, address=f"1380000000{i}", extra=EXTRA) for i in (1, 2, 3)]
    messages.append(
        outbound(4, address="13800000004", extra={**EXTRA, "template_params": ["9999"]})
    )
    messages.append(outbound(5, address="13800000005", extra={"template_params": []}))

    results = sms(tencent_sms).send_batch(messages)

    assert [r.ok for r in results] == [True, False, False, True, False]
    assert results[1].permanent and "IncorrectPhoneNumber" in results[1].error
    assert results[2].permanent is False and "LimitExceeded" in results[2].error
    assert results[4].permanent and "template_id" in results[4].error
    number_sets = sorted(json.loads(r.body)["PhoneNumberSet"] for r in tencent_sms.requests)
    assert number_sets == [["13800000001", "13800000002", "13800000003"], ["13800000004"]]
    assert tencent_sms.violations == []


@pytest.mark.parametrize(
    ("code", "permanent"),
    [
        ("LimitExceeded.AppDailyLimit", False),
        ("RequestLimitExceeded", False),
        ("InternalError.Timeout", False),
        ("FailedOperation.InsufficientBalanceInSmsPackage", True),
        ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", True),
    ],
)
def test_request_error_classes(tencent_sms, code, permanent):
    tencent_sms.fail_next(
        Reply(200, {"Response": {"Error": {"Code": code, "Message": "x"}, "RequestId": "r"}})
    )
    result = sms(tencent_sms).send_batch([outbound(address="+8613800000000", extra=EXTRA)])[0]
    assert not result.ok and result.permanent is permanent and code in result.error


def test_unreachable_is_transient_and_params_must_be_a_list(tencent_sms):
    with pytest.raises(TransportError) as err:
        sms(tencent_sms, base_url=closed_port_url()).send(outbound(address="138", extra=EXTRA))
    assert err.value.permanent is False

    with pytest.raises(TransportError) as err:
        sms(tencent_sms).send(
            outbound(address="138", extra={"template_id": "449739", "template_params": {"a": 1}})
        )
    assert err.value.permanent


def test_test_connection(tencent_sms):
    assert "credentials accepted" in sms(tencent_sms).test_connection()
    assert header(tencent_sms.requests[0], "X-TC-Action") == "SendStatusStatistics"
    with pytest.raises(TransportError) as err:
        sms(tencent_sms, secret_id="AKID-other").test_connection()
    assert "SecretIdNotFound" in err.value.message
    with pytest.raises(ConfigError):
        TencentSMSProvider({"secret_id": "a", "secret_key": "b"}).test_connection()


REPORTS = [
    {
        "user_receive_time": "2026-11-27 10:00:05",
        "nationcode": "86",
        "mobile": "13800000000",
        "report_status": "SUCCESS",
        "errmsg": "DELIVRD",
        "description": "用户短信送达成功",
        "sid": "2640:1",
    },
    {
        "user_receive_time": "2026-11-27 10:00:06",
        "nationcode": "86",
        "mobile": "13800000001",
        "report_status": "FAIL",
        "errmsg": "MN:0001",
        "description": "空号",
        "sid": "2640:2",
    },
]


def test_status_callback(tencent_sms):
    request = RequestFactory().post(
        "/api/v1/callbacks/4?token=cb-token",
        data=json.dumps(REPORTS),
        content_type="application/json",
    )
    events = sms(tencent_sms).parse_callback(request)
    assert [(e.provider_message_id, e.status, e.error) for e in events] == [
        ("2640:1", "delivered", ""),
        ("2640:2", "failed", "MN:0001: 空号"),
    ]


def test_status_callback_rejects_a_wrong_token(tencent_sms):
    request = RequestFactory().post(
        "/api/v1/callbacks/4?token=guess", data=json.dumps(REPORTS), content_type="application/json"
    )
    with pytest.raises(PermissionError):
        sms(tencent_sms).parse_callback(request)
