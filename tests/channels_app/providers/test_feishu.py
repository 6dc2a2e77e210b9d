"""Feishu bot against a loopback server that checks the protocol and the signature."""

from __future__ import annotations

import pytest

from channels_app.channels.base import ConfigError, TransportError
from channels_app.channels.feishu import FeishuBotProvider
from tests.servers import Reply

from .fakes import FakeFeishu, outbound

MENTIONS = [
    {
        "external_id": "u-1",
        "phone": "13800000001",
        "address": "ou_7d8a6e6df7621556ce0d21922b676706ccs",
        "name": "Li Lei",
    },
    {"external_id": "u-2", "phone": "13800000002", "address": "", "name": "No Feishu"},
]


def bot(feishu, **config) -> FeishuBotProvider:
    return FeishuBotProvider(
        {"webhook_url": feishu.webhook_url, "secret": "feishu-secret", **config}
    )


def test_signed_text_with_mentions(feishu):
    result = bot(feishu).send(outbound(9, mentions=MENTIONS))

    assert result.ok and result.delivery_id == 9
    assert feishu.violations == []
    body = feishu.calls(FakeFeishu.HOOK)[0].json()
    assert body["timestamp"].isdigit() and body["sign"]
    assert body["msg_type"] == "text"
    assert body["content"]["text"] == (
        "Disk almost full\ndb-1 is at 91%\n"
        '<at user_id="ou_7d8a6e6df7621556ce0d21922b676706ccs">Li Lei</at>'
    )


def test_wrong_secret_is_rejected_as_permanent(feishu):
    with pytest.raises(TransportError) as err:
        bot(feishu, secret="other").send(outbound())

    assert err.value.permanent and "19021" in err.value.message
    assert feishu.violations == ["POST /open-apis/bot/v2/hook/6c1a8c3e-bot: sign does not match"]


def test_unsigned_bot_sends_no_signature(feishu):
    feishu.secret = ""
    bot(feishu, secret="").send(outbound())
    body = feishu.calls(FakeFeishu.HOOK)[0].json()
    assert "sign" not in body and "timestamp" not in body
    assert feishu.violations == []


def test_post_rich_text(feishu):
    bot(feishu).send(
        outbound(body="line one\nline two", mentions=MENTIONS, extra={"msg_type": "post"})
    )

    body = feishu.calls(FakeFeishu.HOOK)[0].json()
    assert body["content"]["post"]["zh_cn"] == {
        "title": "Disk almost full",
        "content": [
            [{"tag": "text", "text": "line one"}],
            [{"tag": "text", "text": "line two"}],
            [
                {
                    "tag": "at",
                    "user_id": "ou_7d8a6e6df7621556ce0d21922b676706ccs",
                    "user_name": "Li Lei",
                }
            ],
        ],
    }
    assert feishu.violations == []


def test_interactive_card_built_or_taken_from_extra(feishu):
    bot(feishu).send(outbound(extra={"msg_type": "interactive"}))
    card = feishu.calls(FakeFeishu.HOOK)[0].json()["card"]
    assert card["header"]["title"]["content"] == "Disk almost full"
    assert card["elements"][0]["text"] == {"tag": "lark_md", "content": "db-1 is at 91%"}

    own = {"elements": [{"tag": "div", "text": {"tag": "plain_text", "content": "hi"}}]}
    bot(feishu).send(outbound(extra={"msg_type": "interactive", "card": own}))
    assert feishu.calls(FakeFeishu.HOOK)[1].json()["card"] == own
    assert feishu.violations == []


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [
        (
            Reply(
                200,
                {
                    "code": 11232,
                    "msg": "frequency limited psm[lark.oapi.app_platform_runtime]",
                    "data": {},
                },
            ),
            False,
        ),
        (Reply(400, {"code": 9499, "msg": "Bad Request", "data": {}}), True),
        (Reply(200, {"code": 19024, "msg": "Key Words Not Found"}), True),
        (Reply(503, "<html>busy</html>", {"Content-Type": "text/html"}), False),
    ],
)
def test_error_classes(feishu, reply, permanent):
    feishu.fail_next(reply)
    result = bot(feishu).send_batch([outbound()])[0]
    assert not result.ok and result.permanent is permanent


def test_unknown_msg_type_and_test_connection(feishu):
    with pytest.raises(ConfigError):
        bot(feishu).send(outbound(extra={"msg_type": "carousel"}))
    text = bot(feishu).test_connection()
    assert "would POST" in text and "signed" in text
    assert feishu.requests == []
