"""DingTalk (钉钉): the custom group robot (webhook, optionally signed) and the work
notice of an internal app (工作通知, one message per person through the app's agent).

Both answer HTTP 200 with `errcode` in the body: 0 is success; rate limits and "system
busy" are worth a retry, anything else needs a person to fix the account or template."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from ._common import (
    SameContentBatching,
    TokenProvider,
    call,
    json_body,
    masked_url,
    mention_values,
    require,
    with_query,
    with_token,
)
from .base import ConfigError, HTTPProvider, OutboundMessage, SendResult, TransportError
from .registry import register

DINGTALK_API = "https://oapi.dingtalk.com"
# -1 system busy; 130101 robot over 20 messages a minute; 90002/90006/90018 API rate limits.
TRANSIENT_ERRCODES = {-1, 130101, 90002, 90006, 90018}
INVALID_TOKEN_CODES = {"40014", "42001"}
WORK_NOTICE_BATCH = 100  # userid_list takes at most 100 users per call


def robot_signature(secret: str, timestamp_ms: str) -> str:
    """base64(HMAC-SHA256(key=secret, msg="<timestamp>\\n<secret>")); URL-encoding
    happens when it is put in the query string."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _error(data: dict[str, Any]) -> TransportError:
    code = data.get("errcode")
    sub_code = str(data.get("sub_code") or "")
    transient = code in TRANSIENT_ERRCODES or (code == 88 and sub_code in {"90002", "90018"})
    message = f"DingTalk errcode {code}: {data.get('errmsg', '')}"
    if sub_code:
        message += f" (sub_code {sub_code}: {data.get('sub_msg', '')})"
    return TransportError(
        message, permanent=not transient, retry_after=60.0 if code == 130101 else None
    )


def _title(message: OutboundMessage) -> str:
    """The subject, else the first line of the body: DingTalk shows it in the chat list."""
    first = next((line for line in message.body.splitlines() if line.strip()), "")
    return message.subject or first.lstrip("# ")[:60] or "-"


def _text(message: OutboundMessage) -> str:
    return "\n".join(part for part in (message.subject, message.body) if part)


@register
class DingTalkRobotProvider(HTTPProvider):
    """Custom robot of a group chat: one post per task, mentioning the recipients."""

    id = "dingtalk_robot"
    channel = "dingtalk"
    group = True
    label = "DingTalk group robot"
    config_keys = ("webhook_url", "secret", "timeout")
    required_keys = ("webhook_url",)
    secret_keys = ("secret", "webhook_url")

    url_keys = ("webhook_url",)

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        extra = message.extra or {}
        msgtype = extra.get("msgtype") or "text"
        phones = mention_values(message.mentions, "phone")
        user_ids = mention_values(message.mentions, "address")
        # DingTalk only highlights a mention whose "@..." also appears in the text.
        tags = " ".join(
            f"@{m.get('address') or m.get('phone')}"
            for m in message.mentions
            if m.get("address") or m.get("phone")
        )
        at = {"atMobiles": phones, "atUserIds": user_ids, "isAtAll": bool(extra.get("at_all"))}
        if msgtype == "text":
            content = _text(message) + (f"\n{tags}" if tags else "")
            return {"msgtype": "text", "text": {"content": content}, "at": at}
        if msgtype == "markdown":
            text = message.body + (f"\n\n{tags}" if tags else "")
            return {
                "msgtype": "markdown",
                "markdown": {"title": _title(message), "text": text},
                "at": at,
            }
        if msgtype == "actionCard":
            card: dict[str, Any] = {
                "title": message.subject or "-",
                "text": message.body,
                "btnOrientation": str(extra.get("btn_orientation", "0")),
            }
            if extra.get("btns"):
                card["btns"] = [
                    {
                        "title": b.get("title", ""),
                        "actionURL": b.get("action_url") or b.get("actionURL", ""),
                    }
                    for b in extra["btns"]
                ]
            else:
                card["singleTitle"] = extra.get("single_title") or "View"
                card["singleURL"] = extra.get("single_url") or ""
            return {"msgtype": "actionCard", "actionCard": card}
        raise ConfigError(
            f"unsupported DingTalk robot msgtype {msgtype!r} (use text, markdown or actionCard)"
        )

    def url(self) -> str:
        (webhook_url,) = require(self, "webhook_url")
        secret = self.config.get("secret")
        if not secret:
            return webhook_url
        timestamp = str(int(time.time() * 1000))
        return with_query(
            webhook_url, {"timestamp": timestamp, "sign": robot_signature(secret, timestamp)}
        )

    def send(self, message: OutboundMessage) -> SendResult:
        payload = self.payload(message)
        response = call(self, "POST", self.url(), json=payload)
        data = json_body(self, response)
        if response.status_code >= 500:
            raise TransportError(f"HTTP {response.status_code} from DingTalk: {data}")
        if data.get("errcode") != 0:
            raise _error(data)
        return SendResult(message.delivery_id, ok=True)

    def test_connection(self) -> str:
        (webhook_url,) = require(self, "webhook_url")
        signed = "signed with timestamp+sign" if self.config.get("secret") else "unsigned"
        return (
            f"would POST a text message to {masked_url(webhook_url)} ({signed}); "
            "robots have no read-only check, so nothing was sent"
        )


@register
class DingTalkWorkNoticeProvider(TokenProvider, SameContentBatching):
    """Work notice (工作通知) of an internal app: the recipient's DingTalk userid is the
    address; messages with identical content are sent in one call of up to 100 users."""

    batch_limit = WORK_NOTICE_BATCH
    no_address_error = "no DingTalk userid"
    id = "dingtalk_work_notice"
    channel = "dingtalk"
    group = False
    label = "DingTalk work notice (internal app)"
    config_keys = ("app_key", "app_secret", "agent_id", "base_url", "timeout")
    required_keys = ("app_key", "app_secret", "agent_id")
    secret_keys = ("app_secret",)

    default_api = DINGTALK_API
    credential_keys = ("app_key", "app_secret")
    integer_keys = ("agent_id",)

    def _fetch_token(self) -> tuple[str, int]:
        app_key, app_secret = require(self, "app_key", "app_secret")
        response = call(
            self, "GET", f"{self.api}/gettoken", params={"appkey": app_key, "appsecret": app_secret}
        )
        data = json_body(self, response)
        if data.get("errcode") != 0:
            err = _error(data)
            err.message = f"DingTalk gettoken failed: {err.message}"
            raise err
        return data.get("access_token", ""), int(data.get("expires_in") or 7200)

    @staticmethod
    def _token_invalid(data: dict[str, Any]) -> bool:
        code = data.get("errcode")
        return str(code) in INVALID_TOKEN_CODES or (
            code == 88 and str(data.get("sub_code")) in INVALID_TOKEN_CODES
        )

    def msg(self, message: OutboundMessage) -> dict[str, Any]:
        extra = message.extra or {}
        msgtype = extra.get("msgtype") or "text"
        if msgtype == "text":
            return {"msgtype": "text", "text": {"content": _text(message)}}
        if msgtype == "markdown":
            return {
                "msgtype": "markdown",
                "markdown": {"title": _title(message), "text": message.body},
            }
        if msgtype in ("action_card", "actionCard"):
            card: dict[str, Any] = {"title": message.subject or "-", "markdown": message.body}
            if extra.get("btns"):
                card["btn_orientation"] = str(extra.get("btn_orientation", "0"))
                card["btn_json_list"] = [
                    {
                        "title": b.get("title", ""),
                        "action_url": b.get("action_url") or b.get("actionURL", ""),
                    }
                    for b in extra["btns"]
                ]
            else:
                card["single_title"] = extra.get("single_title") or "View"
                card["single_url"] = extra.get("single_url") or ""
            return {"msgtype": "action_card", "action_card": card}
        raise ConfigError(
            f"unsupported DingTalk work notice msgtype {msgtype!r} "
            "(use text, markdown or action_card)"
        )

    def _agent_id(self) -> int:
        (agent_id,) = require(self, "agent_id")
        try:
            return int(agent_id)
        except ValueError:
            raise ConfigError(f"agent_id must be a number, got {agent_id!r}")

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        return self.msg(message)

    def send_same(self, msg: dict[str, Any], chunk: list[OutboundMessage]) -> dict[int, SendResult]:
        task_id = self._send_chunk(msg, chunk)
        return {
            m.delivery_id: SendResult(m.delivery_id, ok=True, provider_message_id=task_id)
            for m in chunk
        }

    def _send_chunk(self, msg: dict[str, Any], chunk: list[OutboundMessage]) -> str:
        body = {
            "agent_id": self._agent_id(),
            "userid_list": ",".join(dict.fromkeys(m.address for m in chunk)),
            "msg": msg,
        }

        def post(access_token: str) -> dict[str, Any]:
            response = call(
                self,
                "POST",
                f"{self.api}/topapi/message/corpconversation/asyncsend_v2",
                params={"access_token": access_token},
                json=body,
            )
            if response.status_code >= 500:
                raise TransportError(f"HTTP {response.status_code} from DingTalk")
            return json_body(self, response)

        data = with_token(self.token, post, self._token_invalid)
        if data.get("errcode") != 0:
            raise _error(data)
        return str(data.get("task_id", ""))

    def test_connection(self) -> str:
        self.token.get()
        return f"got an access token for app_key {self.config.get('app_key')}"
