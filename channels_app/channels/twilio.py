"""Twilio Programmable Messaging: SMS through the Messages resource (form-encoded, HTTP
basic auth) and status callbacks signed with X-Twilio-Signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, ClassVar

from ._common import base_url, call, json_body, require
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

TWILIO_API = "https://api.twilio.com"
# MessageStatus values of a status callback that say something about delivery.
CALLBACK_STATUSES = {
    "delivered": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "sent": "sent",
    "read": "read",
}


def request_signature(auth_token: str, url: str, params: dict[str, list[str]]) -> str:
    """base64(HMAC-SHA1(auth token, URL + each POST parameter name and value, sorted by
    name)), as Twilio signs its webhooks."""
    data = url + "".join(f"{key}{value}" for key in sorted(params) for value in params[key])
    mac = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


@register
class TwilioSMSProvider(HTTPProvider):
    id = "twilio_sms"
    channel = "sms"
    label = "Twilio SMS"
    config_keys = (
        "account_sid",
        "auth_token",
        "from_number",
        "messaging_service_sid",
        "status_callback",
        "callback_url",
        "base_url",
        "timeout",
    )
    required_keys = ("account_sid", "auth_token")
    secret_keys = ("auth_token",)
    # What the callback endpoint answers once the events are recorded (Twilio wants 2xx).
    callback_ack: ClassVar[tuple[str, str]] = ("text/xml", "<Response/>")

    url_keys = ("base_url", "callback_url", "status_callback")

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> dict[str, str]:
        errors = super().validate_config(config)
        if not config.get("from_number") and not config.get("messaging_service_sid"):
            errors["from_number"] = "Set from_number or messaging_service_sid."
        return errors

    @property
    def account_url(self) -> str:
        (sid,) = require(self, "account_sid")
        return f"{base_url(self, TWILIO_API)}/2010-04-01/Accounts/{sid}"

    def _auth(self) -> tuple[str, str]:
        sid, token = require(self, "account_sid", "auth_token")
        return sid, token

    @staticmethod
    def _error(status: int, data: Any, retry_after: str | None) -> TransportError:
        data = data if isinstance(data, dict) else {}
        verdict = classify_status(status)
        try:
            wait = float(retry_after) if retry_after else None
        except ValueError:
            wait = None
        return TransportError(
            f"Twilio HTTP {status} code {data.get('code', '-')}: {data.get('message', '')}",
            permanent=verdict is not False,
            retry_after=wait,
        )

    def send(self, message: OutboundMessage) -> SendResult:
        if not message.address:
            raise TransportError("no phone number", permanent=True)
        form = {"To": message.address, "Body": message.body or message.subject}
        if self.config.get("messaging_service_sid"):
            form["MessagingServiceSid"] = self.config["messaging_service_sid"]
        elif self.config.get("from_number"):
            form["From"] = self.config["from_number"]
        else:
            raise ConfigError("Twilio account needs from_number or messaging_service_sid")
        # Where Twilio posts delivery statuses: our callback URL for this account.
        status_callback = self.config.get("status_callback") or self.config.get("callback_url")
        if status_callback:
            form["StatusCallback"] = status_callback
        response = call(
            self, "POST", f"{self.account_url}/Messages.json", data=form, auth=self._auth()
        )
        data = json_body(self, response)
        if classify_status(response.status_code) is not None:
            raise self._error(response.status_code, data, response.headers.get("Retry-After"))
        return SendResult(
            message.delivery_id, ok=True, provider_message_id=str(data.get("sid", ""))
        )

    def test_connection(self) -> str:
        response = call(self, "GET", f"{self.account_url}.json", auth=self._auth())
        data = json_body(self, response)
        if classify_status(response.status_code) is not None:
            raise self._error(response.status_code, data, response.headers.get("Retry-After"))
        return f"account {data.get('friendly_name', '')!r} is {data.get('status', 'unknown')}"

    def parse_callback(self, request) -> list[CallbackEvent]:
        """Verify X-Twilio-Signature over the URL Twilio called (`callback_url` when a
        proxy changes what Django sees) and map MessageStatus."""
        (auth_token,) = require(self, "auth_token")
        url = self.config.get("callback_url") or request.build_absolute_uri()
        params = {key: request.POST.getlist(key) for key in request.POST}
        expected = request_signature(auth_token, url, params)
        given = request.headers.get("X-Twilio-Signature", "")
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise PermissionError("X-Twilio-Signature does not match")
        status = CALLBACK_STATUSES.get(request.POST.get("MessageStatus", ""))
        sid = request.POST.get("MessageSid") or request.POST.get("SmsSid") or ""
        if not status or not sid:
            return []
        error = ""
        if status == "failed" and request.POST.get("ErrorCode"):
            error = f"Twilio error {request.POST['ErrorCode']}"
        return [CallbackEvent(sid, status, error=error, payload=dict(request.POST.items()))]
