"""WeCom (企业微信): the group robot (webhook with a key) and app messages (应用消息)
sent by an app's agent to members of the corp.

Both answer with `errcode` in the body: 0 is success; rate limits and "system busy" are
worth a retry; an invalid or expired access token is refreshed once."""

from __future__ import annotations

from typing import Any

from ._common import (
    SameContentBatching,
    TokenProvider,
    call,
    json_body,
    masked_url,
    mention_values,
    require,
    with_token,
)
from .base import ConfigError, HTTPProvider, OutboundMessage, SendResult, TransportError
from .registry import register

WECOM_API = "https://qyapi.weixin.qq.com"
# -1 system busy; 45009 over the API (or robot: 20 a minute) rate; 45033 too many concurrent calls.
TRANSIENT_ERRCODES = {-1, 45009, 45033}
INVALID_TOKEN_ERRCODES = {40014, 42001}
APP_BATCH = 1000  # touser takes at most 1000 members per call


def _error(data: dict[str, Any], what: str = "WeCom") -> TransportError:
    code = data.get("errcode")
    return TransportError(
        f"{what} errcode {code}: {data.get('errmsg', '')}",
        permanent=code not in TRANSIENT_ERRCODES,
        retry_after=60.0 if code == 45009 else None,
    )


def _text(message: OutboundMessage) -> str:
    return "\n".join(part for part in (message.subject, message.body) if part)


def _passthrough(msgtype: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Other message types (news, template_card, markdown_v2 ...) come ready-made in
    `extra[<msgtype>]`, in WeCom's own format."""
    section = extra.get(msgtype)
    if not isinstance(section, dict):
        raise ConfigError(f"WeCom msgtype {msgtype!r} needs its body in extra[{msgtype!r}]")
    return {"msgtype": msgtype, msgtype: section}


@register
class WeComRobotProvider(HTTPProvider):
    """Group robot: one post per task, mentioning recipients by phone (text) or by
    WeCom userid (text and markdown)."""

    id = "wecom_robot"
    channel = "wecom"
    group = True
    label = "WeCom group robot"
    config_keys = ("webhook_url", "timeout")
    required_keys = ("webhook_url",)
    secret_keys = ("webhook_url",)

    url_keys = ("webhook_url",)

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        extra = message.extra or {}
        msgtype = extra.get("msgtype") or "text"
        user_ids = mention_values(message.mentions, "address")
        if extra.get("at_all"):
            user_ids.append("@all")
        if msgtype == "text":
            return {
                "msgtype": "text",
                "text": {
                    "content": _text(message),
                    "mentioned_list": user_ids,
                    "mentioned_mobile_list": mention_values(message.mentions, "phone"),
                },
            }
        if msgtype == "markdown":
            # Markdown has no mention lists: mentions are <@userid> in the content.
            content = message.body
            if message.subject and not content.lstrip().startswith("#"):
                content = f"**{message.subject}**\n{content}"
            tags = " ".join(f"<@{u}>" for u in user_ids if u != "@all")
            return {
                "msgtype": "markdown",
                "markdown": {"content": content + (f"\n{tags}" if tags else "")},
            }
        return _passthrough(msgtype, extra)

    def send(self, message: OutboundMessage) -> SendResult:
        (webhook_url,) = require(self, "webhook_url")
        response = call(self, "POST", webhook_url, json=self.payload(message))
        if response.status_code >= 500:
            raise TransportError(f"HTTP {response.status_code} from WeCom robot")
        data = json_body(self, response)
        if data.get("errcode") != 0:
            raise _error(data, "WeCom robot")
        return SendResult(message.delivery_id, ok=True)

    def test_connection(self) -> str:
        (webhook_url,) = require(self, "webhook_url")
        return (
            f"would POST a text message to {masked_url(webhook_url)}; robots have no "
            "read-only check, so nothing was sent"
        )


@register
class WeComAppProvider(TokenProvider, SameContentBatching):
    """App message: the recipient's WeCom userid is the address; identical messages go
    in one call of up to 1000 members, and members WeCom reports as invalid fail."""

    batch_limit = APP_BATCH
    no_address_error = "no WeCom userid"
    id = "wecom_app"
    channel = "wecom"
    group = False
    label = "WeCom app message"
    config_keys = ("corp_id", "corp_secret", "agent_id", "base_url", "safe", "timeout")
    required_keys = ("corp_id", "corp_secret", "agent_id")
    secret_keys = ("corp_secret",)

    default_api = WECOM_API
    credential_keys = ("corp_id", "corp_secret")
    integer_keys = ("agent_id",)

    def _fetch_token(self) -> tuple[str, int]:
        corp_id, corp_secret = require(self, "corp_id", "corp_secret")
        response = call(
            self,
            "GET",
            f"{self.api}/cgi-bin/gettoken",
            params={"corpid": corp_id, "corpsecret": corp_secret},
        )
        if response.status_code >= 500:
            raise TransportError(f"HTTP {response.status_code} from WeCom gettoken")
        data = json_body(self, response)
        if data.get("errcode") != 0:
            raise _error(data, "WeCom gettoken")
        return data.get("access_token", ""), int(data.get("expires_in") or 7200)

    def msg(self, message: OutboundMessage) -> dict[str, Any]:
        extra = message.extra or {}
        msgtype = extra.get("msgtype") or "text"
        if msgtype == "text":
            return {"msgtype": "text", "text": {"content": _text(message)}}
        if msgtype == "markdown":
            content = message.body
            if message.subject and not content.lstrip().startswith("#"):
                content = f"**{message.subject}**\n{content}"
            return {"msgtype": "markdown", "markdown": {"content": content}}
        if msgtype == "textcard":
            if not extra.get("url"):
                raise ConfigError("WeCom textcard needs extra['url']")
            card = {
                "title": message.subject or "-",
                "description": message.body,
                "url": extra["url"],
            }
            if extra.get("btntxt"):
                card["btntxt"] = extra["btntxt"]
            return {"msgtype": "textcard", "textcard": card}
        return _passthrough(msgtype, extra)

    def _agent_id(self) -> int:
        (agent_id,) = require(self, "agent_id")
        try:
            return int(agent_id)
        except ValueError:
            raise ConfigError(f"agent_id must be a number, got {agent_id!r}")

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        return self.msg(message)

    def send_same(self, msg: dict[str, Any], chunk: list[OutboundMessage]) -> dict[int, SendResult]:
        data = self._send_chunk(msg, chunk)
        results: dict[int, SendResult] = {}
        # WeCom userids are case-insensitive; it reports them as it stores them.
        rejected = {
            user.lower(): field
            for field in ("invaliduser", "unlicenseduser")
            for user in str(data.get(field) or "").split("|")
            if user
        }
        for m in chunk:
            if m.address.lower() in rejected:
                results[m.delivery_id] = SendResult.failure(
                    m.delivery_id,
                    TransportError(
                        f"WeCom reported {m.address} as {rejected[m.address.lower()]}",
                        permanent=True,
                    ),
                )
            else:
                results[m.delivery_id] = SendResult(
                    m.delivery_id, ok=True, provider_message_id=str(data.get("msgid", ""))
                )
        return results

    def _send_chunk(self, msg: dict[str, Any], chunk: list[OutboundMessage]) -> dict[str, Any]:
        body = {
            "touser": "|".join(dict.fromkeys(m.address for m in chunk)),
            "agentid": self._agent_id(),
            **msg,
            "safe": int(self.config.get("safe") or 0),
        }

        def post(access_token: str) -> dict[str, Any]:
            response = call(
                self,
                "POST",
                f"{self.api}/cgi-bin/message/send",
                params={"access_token": access_token},
                json=body,
            )
            if response.status_code >= 500:
                raise TransportError(f"HTTP {response.status_code} from WeCom")
            return json_body(self, response)

        data = with_token(self.token, post, lambda d: d.get("errcode") in INVALID_TOKEN_ERRCODES)
        if data.get("errcode") != 0:
            raise _error(data)
        return data

    def test_connection(self) -> str:
        self.token.get()
        return f"got an access token for corp {self.config.get('corp_id')}"
