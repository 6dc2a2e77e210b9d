"""WeChat official account (微信公众号) template messages (模板消息) to followers,
addressed by their openid.

The access token (cgi-bin/token) is cached in the shared cache until shortly before it
expires: WeChat caps how many a day an account may fetch, and each fetch revokes the
previous token after a short grace period."""

from __future__ import annotations

from typing import Any

from ._common import TokenProvider, call, json_body, require, with_token
from .base import ConfigError, OutboundMessage, SendResult, TransportError
from .registry import register

WECHAT_API = "https://api.weixin.qq.com"
INVALID_TOKEN_ERRCODES = {40001, 40014, 42001}
# -1 system busy; 45009 over the daily API quota (resets at midnight); 45047 too many
# messages in a row to one user.
TRANSIENT_ERRCODES = {-1, 45009, 45047}


def _error(data: dict[str, Any], what: str = "WeChat") -> TransportError:
    code = data.get("errcode")
    message = f"{what} errcode {code}: {data.get('errmsg', '')}"
    if code == 43004:
        message += " (the user does not follow the official account)"
    return TransportError(
        message,
        permanent=code not in TRANSIENT_ERRCODES,
        retry_after=3600.0 if code == 45009 else None,
    )


def template_data(data: Any) -> dict[str, dict[str, Any]]:
    """{"first": "Hi", "amount": {"value": "9.90", "color": "#173177"}} ->
    {"first": {"value": "Hi"}, "amount": {"value": "9.90", "color": "#173177"}}."""
    if not isinstance(data, dict):
        raise ConfigError("WeChat template data (extra['data']) must be an object")
    return {
        str(field): value
        if isinstance(value, dict) and "value" in value
        else {"value": "" if value is None else str(value)}
        for field, value in data.items()
    }


@register
class WeChatMPProvider(TokenProvider):
    id = "wechat_mp"
    channel = "wechat_mp"
    group = False
    label = "WeChat official account template message"
    config_keys = ("app_id", "app_secret", "base_url", "timeout")
    required_keys = ("app_id", "app_secret")
    secret_keys = ("app_secret",)

    default_api = WECHAT_API
    credential_keys = ("app_id", "app_secret")

    def _fetch_token(self) -> tuple[str, int]:
        app_id, app_secret = require(self, "app_id", "app_secret")
        response = call(
            self,
            "GET",
            f"{self.api}/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": app_id, "secret": app_secret},
        )
        if response.status_code >= 500:
            raise TransportError(f"HTTP {response.status_code} from WeChat token endpoint")
        data = json_body(self, response)
        if data.get("errcode"):
            raise _error(data, "WeChat token")
        return data.get("access_token", ""), int(data.get("expires_in") or 7200)

    def body(self, message: OutboundMessage) -> dict[str, Any]:
        extra = message.extra or {}
        if not extra.get("template_id"):
            raise ConfigError("WeChat template message needs extra['template_id']")
        body: dict[str, Any] = {
            "touser": message.address,
            "template_id": extra["template_id"],
            "data": template_data(extra.get("data") or {}),
            # WeChat drops a repeat of the same client_msg_id to the same user: a retry
            # after a lost answer does not notify the follower twice.
            "client_msg_id": f"msgcenter-{message.delivery_id}",
        }
        if extra.get("url"):
            body["url"] = extra["url"]
        if isinstance(extra.get("miniprogram"), dict):
            body["miniprogram"] = extra["miniprogram"]
        return body

    def send(self, message: OutboundMessage) -> SendResult:
        if not message.address:
            raise TransportError("no WeChat openid", permanent=True)
        body = self.body(message)

        def post(access_token: str) -> dict[str, Any]:
            response = call(
                self,
                "POST",
                f"{self.api}/cgi-bin/message/template/send",
                params={"access_token": access_token},
                json=body,
            )
            if response.status_code >= 500:
                raise TransportError(f"HTTP {response.status_code} from WeChat")
            return json_body(self, response)

        data = with_token(self.token, post, lambda d: d.get("errcode") in INVALID_TOKEN_ERRCODES)
        if data.get("errcode"):
            raise _error(data)
        return SendResult(
            message.delivery_id, ok=True, provider_message_id=str(data.get("msgid", ""))
        )

    def test_connection(self) -> str:
        self.token.get()
        return f"got an access token for app {self.config.get('app_id')}"
