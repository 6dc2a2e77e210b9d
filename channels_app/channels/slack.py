"""Slack incoming webhook: one post per task into the webhook's channel.

Slack answers `ok` as plain text; errors are plain text too (`invalid_payload`,
`channel_is_archived` ...) with a 4xx status, which no retry fixes, except 429."""

from __future__ import annotations

from typing import Any

from ._common import call, masked_url, require
from .base import HTTPProvider, OutboundMessage, SendResult, status_error
from .registry import register


@register
class SlackWebhookProvider(HTTPProvider):
    id = "slack_webhook"
    channel = "slack"
    group = True
    label = "Slack incoming webhook"
    config_keys = ("webhook_url", "timeout")
    required_keys = ("webhook_url",)
    secret_keys = ("webhook_url",)

    url_keys = ("webhook_url",)

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        """mrkdwn text: the subject in bold on the first line, then the body, then the
        recipients that have a Slack member id as <@ID> mentions. The template writes
        mrkdwn itself (links as <url|text>), so the text is not escaped here."""
        lines = []
        if message.subject:
            lines.append(f"*{message.subject}*")
        if message.body:
            lines.append(message.body)
        mentions = " ".join(f"<@{m['address']}>" for m in message.mentions if m.get("address"))
        if mentions:
            lines.append(mentions)
        payload: dict[str, Any] = {"text": "\n".join(lines)}
        extra = message.extra or {}
        # Block Kit layouts come ready-made; `text` stays as the notification fallback.
        if isinstance(extra.get("blocks"), list):
            payload["blocks"] = extra["blocks"]
        for key in ("unfurl_links", "unfurl_media"):
            if key in extra:
                payload[key] = bool(extra[key])
        return payload

    def send(self, message: OutboundMessage) -> SendResult:
        (webhook_url,) = require(self, "webhook_url")
        response = call(self, "POST", webhook_url, json=self.payload(message))
        error = status_error(response, "Slack")
        if error is not None:
            raise error
        return SendResult(message.delivery_id, ok=True)

    def test_connection(self) -> str:
        (webhook_url,) = require(self, "webhook_url")
        return (
            f'would POST {{"text": ...}} to {masked_url(webhook_url)}; incoming webhooks '
            "have no read-only check, so nothing was sent"
        )
