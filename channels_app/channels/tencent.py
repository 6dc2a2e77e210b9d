"""Tencent Cloud SMS (腾讯云短信, API 2021-01-11): SendSms signed with TC3-HMAC-SHA256,
and the status callback (短信下发状态回调) as the delivery receipt.

SendSms takes up to 200 numbers with the same template and parameters, so a batch is
grouped by content and each number's own status is read from SendStatusSet."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ._common import (
    SameContentBatching,
    base_url,
    call,
    check_callback_token,
    json_body,
    json_list,
    require,
)
from .base import (
    CallbackEvent,
    ConfigError,
    OutboundMessage,
    SendResult,
    TransportError,
)
from .registry import register

TENCENT_SMS_API = "https://sms.tencentcloudapi.com"
API_VERSION = "2021-01-11"
SERVICE = "sms"
BATCH = 200
TRANSIENT_PREFIXES = ("LimitExceeded", "RequestLimitExceeded", "InternalError")


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc3_authorization(
    *, secret_id: str, secret_key: str, host: str, payload: bytes, timestamp: int, content_type: str
) -> str:
    """The Authorization header of TC3-HMAC-SHA256 for a POST to "/" signing the
    content-type and host headers."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    signed_headers = "content-type;host"
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type}\nhost:{host}\n",
            signed_headers,
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    scope = f"{date}/{SERVICE}/tc3_request"
    string_to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), SERVICE), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )


def _is_transient(code: str) -> bool:
    return code.startswith(TRANSIENT_PREFIXES)


@register
class TencentSMSProvider(SameContentBatching):
    batch_limit = BATCH
    no_address_error = "no phone number"
    id = "tencent_sms"
    channel = "sms"
    label = "Tencent Cloud SMS"
    config_keys = (
        "secret_id",
        "secret_key",
        "sdk_app_id",
        "sign_name",
        "region",
        "base_url",
        "callback_token",
        "timeout",
    )
    required_keys = ("secret_id", "secret_key", "sdk_app_id")
    secret_keys = ("secret_key", "callback_token")
    # The body the provider expects back once the reports are recorded (else it retries).
    callback_ack: ClassVar[tuple[str, str]] = (
        "application/json",
        json.dumps({"result": 0, "errmsg": "OK"}),
    )

    url_keys = ("base_url",)

    def api(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """One signed API call; returns `Response` or raises on `Response.Error`."""
        secret_id, secret_key = require(self, "secret_id", "secret_key")
        url = base_url(self, TENCENT_SMS_API)
        host = urlsplit(url).netloc
        payload = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(time.time())
        content_type = "application/json; charset=utf-8"
        headers = {
            "Authorization": tc3_authorization(
                secret_id=secret_id,
                secret_key=secret_key,
                host=host,
                payload=payload,
                timestamp=timestamp,
                content_type=content_type,
            ),
            "Content-Type": content_type,
            "Host": host,
            "X-TC-Action": action,
            "X-TC-Version": API_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.config.get("region") or "ap-guangzhou",
        }
        response = call(self, "POST", url + "/", content=payload, headers=headers)
        if response.status_code >= 500:
            raise TransportError(f"HTTP {response.status_code} from Tencent Cloud")
        data = json_body(self, response).get("Response") or {}
        error = data.get("Error")
        if error:
            code = str(error.get("Code") or "")
            raise TransportError(
                f"Tencent SMS {code}: {error.get('Message', '')}", permanent=not _is_transient(code)
            )
        return data

    def _request(self, message: OutboundMessage) -> dict[str, Any]:
        """The content part of SendSms for one message (numbers added per group)."""
        extra = message.extra or {}
        sign_name = extra.get("sign_name") or self.config.get("sign_name")
        if not extra.get("template_id"):
            raise ConfigError("Tencent SMS needs extra['template_id']")
        params = extra.get("template_params") or []
        if not isinstance(params, list):
            raise ConfigError("Tencent SMS extra['template_params'] must be a list")
        request = {
            "SmsSdkAppId": str(require(self, "sdk_app_id")[0]),
            "TemplateId": str(extra["template_id"]),
            "TemplateParamSet": [str(p) for p in params],
        }
        if sign_name:  # required for mainland China numbers, absent for international
            request["SignName"] = sign_name
        return request

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        return self._request(message)

    def send_same(
        self, request: dict[str, Any], chunk: list[OutboundMessage]
    ) -> dict[int, SendResult]:
        return self._send_chunk(request, chunk)

    def _send_chunk(
        self, request: dict[str, Any], chunk: list[OutboundMessage]
    ) -> dict[int, SendResult]:
        numbers = list(dict.fromkeys(m.address for m in chunk))
        try:
            data = self.api("SendSms", {"PhoneNumberSet": numbers, **request})
        except TransportError as exc:
            return {m.delivery_id: SendResult.failure(m.delivery_id, exc) for m in chunk}
        statuses = data.get("SendStatusSet") or []
        out = {}
        for message in chunk:
            status = self._status_for(message.address, numbers, statuses)
            code = str((status or {}).get("Code") or "")
            if code == "Ok":
                out[message.delivery_id] = SendResult(
                    message.delivery_id,
                    ok=True,
                    provider_message_id=str(status.get("SerialNo", "")),
                )
            else:
                error = (
                    f"Tencent SMS {code}: {status.get('Message', '')}"
                    if status
                    else "Tencent SMS returned no status for this number"
                )
                out[message.delivery_id] = SendResult.failure(
                    message.delivery_id,
                    TransportError(error, permanent=bool(code) and not _is_transient(code)),
                )
        return out

    @staticmethod
    def _status_for(
        address: str, numbers: list[str], statuses: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Tencent answers in E.164 (+8613...) whatever form was sent; match on that,
        else on the trailing digits, else by position."""
        for status in statuses:
            if status.get("PhoneNumber") == address:
                return status
        digits = address.lstrip("+")
        for status in statuses:
            if str(status.get("PhoneNumber", "")).endswith(digits[-11:]):
                return status
        index = numbers.index(address)
        return statuses[index] if index < len(statuses) else None

    def test_connection(self) -> str:
        now = datetime.now(UTC) + timedelta(hours=8)  # the statistics use Beijing time
        self.api(
            "SendStatusStatistics",
            {
                "SmsSdkAppId": str(require(self, "sdk_app_id")[0]),
                "BeginTime": now.strftime("%Y%m%d00"),
                "EndTime": now.strftime("%Y%m%d23"),
                "Limit": 0,
                "Offset": 0,
            },
        )
        return f"credentials accepted for SDK app {self.config.get('sdk_app_id')}"

    def parse_callback(self, request) -> list[CallbackEvent]:
        check_callback_token(self, request)
        events = []
        for report in json_list(request):
            sid = str(report.get("sid") or "")
            if not sid:
                continue
            ok = report.get("report_status") == "SUCCESS"
            error = "" if ok else f"{report.get('errmsg', '')}: {report.get('description', '')}"
            events.append(
                CallbackEvent(sid, "delivered" if ok else "failed", error=error, payload=report)
            )
        return events
