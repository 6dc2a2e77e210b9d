"""Alibaba Cloud SMS (阿里云短信, Dysmsapi 2017-05-25): SendSms with the RPC request
signature (HMAC-SHA1 over the percent-encoded canonical query), and the HTTP status
report push (SmsReport) as the delivery receipt."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

from ._common import base_url, call, check_callback_token, json_body, json_list, require
from .base import (
    CallbackEvent,
    ConfigError,
    HTTPProvider,
    OutboundMessage,
    SendResult,
    TransportError,
    classify_status,
)
from .registry import register

ALIYUN_SMS_API = "https://dysmsapi.aliyuncs.com"
API_VERSION = "2017-05-25"
# Worth a retry: per-number/per-account flow control, throttling, the platform's own errors.
TRANSIENT_PREFIXES = (
    "isv.BUSINESS_LIMIT_CONTROL",
    "Throttling",
    "ServiceUnavailable",
    "InternalError",
    "isp.SYSTEM_ERROR",
    "isp.GATEWAY_ERROR",
)


def percent_encode(value: Any) -> str:
    """RFC 3986 encoding as Alibaba Cloud specifies it: only A-Z a-z 0-9 - _ . ~ stay;
    a space is %20, `*` is %2A."""
    return quote(str(value), safe="~")


def rpc_signature(access_key_secret: str, method: str, params: dict[str, Any]) -> str:
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
    )
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    mac = hmac.new(f"{access_key_secret}&".encode(), string_to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


@register
class AliyunSMSProvider(HTTPProvider):
    id = "aliyun_sms"
    channel = "sms"
    label = "Alibaba Cloud SMS"
    config_keys = (
        "access_key_id",
        "access_key_secret",
        "sign_name",
        "region",
        "base_url",
        "callback_token",
        "timeout",
    )
    required_keys = ("access_key_id", "access_key_secret")
    secret_keys = ("access_key_secret", "callback_token")
    # The body the provider expects back once the reports are recorded (else it retries).
    callback_ack: ClassVar[tuple[str, str]] = (
        "application/json",
        json.dumps({"code": 0, "msg": "成功"}, ensure_ascii=False),
    )

    url_keys = ("base_url",)

    def rpc(self, action: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One signed RPC call (POST, form-encoded); returns (HTTP status, JSON body)."""
        key_id, key_secret = require(self, "access_key_id", "access_key_secret")
        signed = {
            "AccessKeyId": key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": self.config.get("region") or "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
            **{k: str(v) for k, v in params.items()},
        }
        signed["Signature"] = rpc_signature(key_secret, "POST", signed)
        response = call(self, "POST", base_url(self, ALIYUN_SMS_API) + "/", data=signed)
        return response.status_code, json_body(self, response)

    @staticmethod
    def _error(status: int, data: dict[str, Any]) -> TransportError:
        code = str(data.get("Code") or "")
        if code.startswith(TRANSIENT_PREFIXES):
            permanent = False
        elif code.startswith("isv."):
            permanent = True  # template, sign, number or balance: a person must act
        else:
            # Signature and key errors (4xx) are permanent; 5xx and 429 are not.
            permanent = classify_status(status) is not False
        return TransportError(
            f"Aliyun SMS {code or status}: {data.get('Message', '')}",
            permanent=permanent,
            retry_after=60.0 if code.startswith(TRANSIENT_PREFIXES) else None,
        )

    def send(self, message: OutboundMessage) -> SendResult:
        extra = message.extra or {}
        sign_name = extra.get("sign_name") or self.config.get("sign_name")
        if not sign_name:
            raise ConfigError(
                "Aliyun SMS needs a sign name (account sign_name or extra['sign_name'])"
            )
        if not extra.get("template_code"):
            raise ConfigError("Aliyun SMS needs extra['template_code']")
        if not message.address:
            raise TransportError("no phone number", permanent=True)
        status, data = self.rpc(
            "SendSms",
            {
                "PhoneNumbers": message.address,
                "SignName": sign_name,
                "TemplateCode": extra["template_code"],
                "TemplateParam": json.dumps(
                    extra.get("template_params") or {}, ensure_ascii=False, separators=(",", ":")
                ),
                # Comes back as out_id in the status report.
                "OutId": str(message.delivery_id),
            },
        )
        if data.get("Code") != "OK":
            raise self._error(status, data)
        return SendResult(
            message.delivery_id, ok=True, provider_message_id=str(data.get("BizId", ""))
        )

    def test_connection(self) -> str:
        sign_name = self.config.get("sign_name")
        if not sign_name:
            raise ConfigError("set sign_name to check the account")
        status, data = self.rpc("QuerySmsSign", {"SignName": sign_name})
        if data.get("Code") != "OK":
            raise self._error(status, data)
        state = {0: "under review", 1: "approved", 2: "rejected"}.get(
            data.get("SignStatus"), str(data.get("SignStatus"))
        )
        return f"credentials accepted; sign name {sign_name!r} is {state}"

    def parse_callback(self, request) -> list[CallbackEvent]:
        check_callback_token(self, request)
        events = []
        for report in json_list(request):
            biz_id = str(report.get("biz_id") or "")
            if not biz_id:
                continue
            ok = report.get("success") in (True, "true", "True")
            error = "" if ok else f"{report.get('err_code', '')}: {report.get('err_msg', '')}"
            events.append(
                CallbackEvent(biz_id, "delivered" if ok else "failed", error=error, payload=report)
            )
        return events
