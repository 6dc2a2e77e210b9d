"""WeCom robot and app messages against a loopback server that checks the protocol."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from channels_app.channels.base import ConfigError, TransportError
from channels_app.channels.wecom import WeComAppProvider, WeComRobotProvider
from tests.servers import Reply

from .fakes import FakeWeCom, closed_port_url, outbound

MENTIONS = [
    {"external_id": "u-1", "phone": "13800000001", "address": "", "name": "Li Lei"},
    {"external_id": "u-2", "phone": "13800000002", "address": "lisi", "name": "Li Si"},
]


def robot(wecom, **config) -> WeComRobotProvider:
    return WeComRobotProvider({"webhook_url": wecom.webhook_url, **config})


def app(wecom, **config) -> WeComAppProvider:
    return WeComAppProvider(
        {
            "corp_id": "ww-corp",
            "corp_secret": "corp-secret",
            "agent_id": 1000002,
            "base_url": wecom.url,
            **config,
        }
    )


# --- robot ---------------------------------------------------------------------------


def test_robot_text_mentions_phones_and_userids(wecom):
    result = robot(wecom).send(outbound(4, mentions=MENTIONS))

    assert result.ok and result.delivery_id == 4
    (req,) = wecom.calls(FakeWeCom.ROBOT)
    assert req.query["key"] == ["robot-key"]
    assert req.json() == {
        "msgtype": "text",
        "text": {
            "content": "Disk almost full\ndb-1 is at 91%",
            "mentioned_list": ["lisi"],
            "mentioned_mobile_list": ["13800000001", "13800000002"],
        },
    }
    assert wecom.violations == []


def test_robot_markdown_mentions_in_content(wecom):
    robot(wecom).send(
        outbound(mentions=MENTIONS, body="> db-1 **91%**", extra={"msgtype": "markdown"})
    )

    body = wecom.calls(FakeWeCom.ROBOT)[0].json()
    assert body == {
        "msgtype": "markdown",
        "markdown": {"content": "**Disk almost full**\n> db-1 **91%**\n<@lisi>"},
    }
    assert wecom.violations == []


def test_robot_other_msgtypes_pass_through_from_extra(wecom):
    news = {"articles": [{"title": "Release 2.1", "url": "https://example.com/r"}]}
    robot(wecom).send(outbound(extra={"msgtype": "news", "news": news}))
    assert wecom.calls(FakeWeCom.ROBOT)[0].json() == {"msgtype": "news", "news": news}

    with pytest.raises(ConfigError):
        robot(wecom).send(outbound(extra={"msgtype": "template_card"}))


def test_robot_wrong_key_is_permanent(wecom):
    with pytest.raises(TransportError) as err:
        WeComRobotProvider({"webhook_url": f"{wecom.url}{FakeWeCom.ROBOT}?key=bad"}).send(
            outbound()
        )
    assert err.value.permanent and "93000" in err.value.message
    assert wecom.violations == ["POST /cgi-bin/webhook/send: wrong key"]


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [
        ({"errcode": 45009, "errmsg": "api freq out of limit"}, False),
        ({"errcode": -1, "errmsg": "system busy"}, False),
        ({"errcode": 40008, "errmsg": "invalid message type"}, True),
    ],
)
def test_robot_error_classes(wecom, reply, permanent):
    wecom.fail_next(Reply(200, reply))
    result = robot(wecom).send_batch([outbound()])[0]
    assert not result.ok and result.permanent is permanent
    assert str(reply["errcode"]) in result.error


def test_robot_unreachable_is_transient():
    with pytest.raises(TransportError) as err:
        WeComRobotProvider({"webhook_url": closed_port_url() + "/x?key=k"}).send(outbound())
    assert err.value.permanent is False


def test_robot_test_connection_sends_nothing(wecom):
    text = robot(wecom).test_connection()
    assert "would POST" in text and "robot-key" not in text
    assert wecom.requests == []


# --- app messages --------------------------------------------------------------------


def test_app_message_token_cached_across_instances(wecom):
    first = app(wecom).send(outbound(1, address="zhangsan"))
    second = app(wecom).send(outbound(2, address="lisi"))

    assert first.ok and first.provider_message_id == "msg-1"
    assert second.ok and second.provider_message_id == "msg-2"
    assert len(wecom.calls("/cgi-bin/gettoken")) == 1
    req = wecom.calls(FakeWeCom.SEND)[0]
    assert req.query["access_token"] == ["wecom-1"]
    assert req.json() == {
        "touser": "zhangsan",
        "agentid": 1000002,
        "msgtype": "text",
        "text": {"content": "Disk almost full\ndb-1 is at 91%"},
        "safe": 0,
    }
    assert wecom.violations == []
    # The token lives in the shared cache, under a key that does not reveal the secret.
    key = app(wecom).token.key
    assert cache.get(key) == "wecom-1" and "corp-secret" not in key


@pytest.mark.parametrize("errcode", [40014, 42001])
def test_app_message_refreshes_token_once_on_invalid_token(wecom, errcode):
    app(wecom).send(outbound(1, address="zhangsan"))
    if errcode == 42001:
        wecom.tokens.expire_all()
    else:
        wecom.tokens.valid.clear()  # revoked: the platform no longer knows it

    result = app(wecom).send(outbound(2, address="zhangsan"))

    assert result.ok
    assert len(wecom.calls("/cgi-bin/gettoken")) == 2
    assert [r.query["access_token"][0] for r in wecom.calls(FakeWeCom.SEND)] == [
        "wecom-1",
        "wecom-1",
        "wecom-2",
    ]


def test_app_message_batch_with_invalid_member(wecom):
    messages = [
        outbound(1, address="zhangsan"),
        outbound(2, address="ghost"),
        outbound(3, address="LiSi"),
        outbound(4, address="wangwu", body="other"),
    ]

    results = app(wecom).send_batch(messages)

    assert [r.ok for r in results] == [True, False, True, True]
    assert results[1].permanent and "ghost" in results[1].error
    tousers = sorted(r.json()["touser"] for r in wecom.calls(FakeWeCom.SEND))
    assert tousers == ["wangwu", "zhangsan|ghost|LiSi"]
    assert wecom.violations == []


def test_app_message_all_invalid_is_permanent(wecom):
    with pytest.raises(TransportError) as err:
        app(wecom).send(outbound(address="nobody"))
    assert err.value.permanent and "81013" in err.value.message


def test_app_message_textcard_and_markdown(wecom):
    provider = app(wecom)
    provider.send(
        outbound(
            1,
            address="zhangsan",
            extra={"msgtype": "textcard", "url": "https://ops.example.com/db-1", "btntxt": "Open"},
        )
    )
    provider.send(outbound(2, address="zhangsan", extra={"msgtype": "markdown"}))

    card, markdown = (r.json() for r in wecom.calls(FakeWeCom.SEND))
    assert card["textcard"] == {
        "title": "Disk almost full",
        "description": "db-1 is at 91%",
        "url": "https://ops.example.com/db-1",
        "btntxt": "Open",
    }
    assert markdown["markdown"] == {"content": "**Disk almost full**\ndb-1 is at 91%"}
    assert wecom.violations == []

    with pytest.raises(TransportError) as err:
        provider.send(outbound(3, address="zhangsan", extra={"msgtype": "textcard"}))
    assert err.value.permanent and "url" in err.value.message


def test_app_message_rate_limit_is_transient(wecom):
    wecom.fail_next(Reply(200, {"errcode": 45009, "errmsg": "api freq out of limit"}))
    result = app(wecom).send_batch([outbound(address="zhangsan")])[0]
    assert not result.ok and result.permanent is False and result.retry_after == 60


def test_app_wrong_secret_is_permanent_and_test_connection(wecom):
    with pytest.raises(TransportError) as err:
        app(wecom, corp_secret="wrong").send(outbound(address="zhangsan"))
    assert err.value.permanent and "40001" in err.value.message

    assert "access token" in app(wecom).test_connection()
