"""Feishu / Lark (飞书): the custom group bot (webhook, optionally signed).

The bot answers `{"code": 0, "msg": "success"}` (older bots: `StatusCode`); a non-zero
code is a failure, transient only for the bot's rate limit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from html import escape
from typing import Any

from ._common import call, json_body, masked_url, require
from .base import ConfigError, HTTPProvider, OutboundMessage, SendResult, TransportError
from .registry import register

# 11232: frequency limited (a bot takes 100 messages a minute, 5 a second).
TRANSIENT_CODES = {11232}


def bot_signature(secret: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(key="<timestamp>\\n<secret>", msg=b"")), as Feishu documents."""
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _mentioned(message: OutboundMessage) -> list[tuple[str, str]]:
    """(open_id / user_id, name) of the mentions that have a Feishu id."""
    seen: dict[str, str] = {}
    for mention in message.mentions:
        user_id = str(mention.get("address") or "").strip()
        if user_id:
            seen.setdefault(user_id, str(mention.get("name") or mention.get("external_id") or ""))
    return list(seen.items())


@register
class FeishuBotProvider(HTTPProvider):
    """Custom bot of a group chat: one post per task, mentioning the recipients that
    have a Feishu id (open_id or user_id) as their address."""

    id = "feishu_bot"
    channel = "feishu"
    group = True
    label = "Feishu / Lark group bot"
    config_keys = ("webhook_url", "secret", "timeout")
    required_keys = ("webhook_url",)
    secret_keys = ("secret", "webhook_url")

    url_keys = ("webhook_url",)

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        extra = message.extra or {}
        msg_type = extra.get("msg_type") or extra.get("msgtype") or "text"
        mentioned = _mentioned(message)
        if extra.get("at_all"):
            mentioned.append(("all", "所有人"))
        if msg_type == "text":
            text = "\n".join(part for part in (message.subject, message.body) if part)
            tags = " ".join(
                f'<at user_id="{escape(uid)}">{escape(name)}</at>' for uid, name in mentioned
            )
            return {"msg_type": "text", "content": {"text": text + (f"\n{tags}" if tags else "")}}
        if msg_type == "post":
            lines: list[list[dict[str, Any]]] = [
                [{"tag": "text", "text": line}] for line in message.body.splitlines() or [""]
            ]
            if mentioned:
                lines.append(
                    [{"tag": "at", "user_id": uid, "user_name": name} for uid, name in mentioned]
                )
            locale = extra.get("locale") or "zh_cn"
            return {
                "msg_type": "post",
                "content": {"post": {locale: {"title": message.subject, "content": lines}}},
            }
        if msg_type == "interactive":
            if isinstance(extra.get("card"), dict):
                return {"msg_type": "interactive", "card": extra["card"]}
            tags = " ".join(f"<at id={uid}></at>" for uid, _ in mentioned)
            card = {
                "config": {"wide_screen_mode": True},
                "header": {
                    "title": {"tag": "plain_text", "content": message.subject or "-"},
                    "template": extra.get("header_template") or "blue",
                },
                "elements": [
                    {
                        "tag": "div",
                        "text": {
                            "tag": "lark_md",
                            "content": message.body + (f"\n{tags}" if tags else ""),
                        },
                    }
                ],
            }
            return {"msg_type": "interactive", "card": card}
        raise ConfigError(
            f"unsupported Feishu msg_type {msg_type!r} (use text, post or interactive)"
        )

    def send(self, message: OutboundMessage) -> SendResult:
        (webhook_url,) = require(self, "webhook_url")
        body = self.payload(message)
        if self.config.get("secret"):
            timestamp = str(int(time.time()))
            body = {
                "timestamp": timestamp,
                "sign": bot_signature(self.config["secret"], timestamp),
                **body,
            }
        response = call(self, "POST", webhook_url, json=body)
        if response.status_code >= 500 or response.status_code == 429:
            raise TransportError(f"HTTP {response.status_code} from Feishu: {response.text[:300]}")
        data = json_body(self, response)
        code = data.get("code", data.get("StatusCode"))
        if code != 0:
            raise TransportError(
                f"Feishu code {code}: {data.get('msg', data.get('StatusMessage', ''))}",
                permanent=code not in TRANSIENT_CODES,
            )
        return SendResult(message.delivery_id, ok=True)

    def test_connection(self) -> str:
        (webhook_url,) = require(self, "webhook_url")
        signed = "signed with timestamp+sign" if self.config.get("secret") else "unsigned"
        return (
            f"would POST a text message to {masked_url(webhook_url)} ({signed}); "
            "bots have no read-only check, so nothing was sent"
        )
