"""Generic webhook: POSTs JSON to the account's URL, signed with HMAC-SHA256 over
"<timestamp>.<raw body>" (headers X-Msgcenter-Timestamp, X-Msgcenter-Signature)."""

import hashlib
import hmac
import json
import time

from .base import ConfigError, HTTPProvider, OutboundMessage, SendResult
from .registry import register


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@register
class WebhookProvider(HTTPProvider):
    id = "webhook"
    channel = "webhook"
    group = True
    label = "Signed JSON webhook"
    config_keys = ("url", "secret", "timeout", "headers")
    required_keys = ("url",)
    url_keys = ("url",)
    secret_keys = ("secret",)

    def send(self, message: OutboundMessage) -> SendResult:
        url = self.config.get("url")
        if not url:
            raise ConfigError("webhook account has no url")
        payload = {
            "delivery": str(message.delivery_id),
            "task": message.task_id,
            "template": message.template,
            "category": message.category,
            "subject": message.subject,
            "body": message.body,
            "recipients": [m.get("external_id") for m in message.mentions],
            "mentions": message.mentions,
            "extra": message.extra,
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "msgcenter-webhook/1",
            "X-Msgcenter-Timestamp": timestamp,
            "X-Msgcenter-Delivery": str(message.delivery_id),
            **(self.config.get("headers") or {}),
        }
        if self.config.get("secret"):
            headers["X-Msgcenter-Signature"] = sign(self.config["secret"], timestamp, body)
        response = self.request("POST", url, content=body, headers=headers)
        provider_id = response.headers.get("X-Request-Id", "") or f"webhook-{message.delivery_id}"
        return SendResult(message.delivery_id, ok=True, provider_message_id=provider_id[:200])
