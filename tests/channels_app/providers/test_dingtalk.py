"""DingTalk robot and work notice against a loopback server that checks the protocol."""

from __future__ import annotations

import pytest

from channels_app.channels.base import ConfigError, TransportError
from channels_app.channels.dingtalk import DingTalkRobotProvider, DingTalkWorkNoticeProvider
from tests.servers import Reply

from .fakes import FakeDingTalk, closed_port_url, outbound

MENTIONS = [
    {"external_id": "u-1", "phone": "13800000001", "address": "", "name": "Li Lei"},
    {"external_id": "u-2", "phone": "", "address": "manager4220", "name": "Han Meimei"},
]


def robot(dingtalk, **config) -> DingTalkRobotProvider:
    return DingTalkRobotProvider(
        {"webhook_url": dingtalk.webhook_url, "secret": dingtalk.robot_secret, **config}
    )


def notice(dingtalk, **config) -> DingTalkWorkNoticeProvider:
    return DingTalkWorkNoticeProvider(
        {
            "app_key": "ding-key",
            "app_secret": "ding-secret",
            "agent_id": "123456",
            "base_url": dingtalk.url,
            **config,
        }
    )


# --- robot ---------------------------------------------------------------------------


def test_robot_signed_text_mentions_by_phone_and_userid(dingtalk):
    result = robot(dingtalk).send(outbound(7, mentions=MENTIONS))

    assert result.ok and result.delivery_id == 7
    assert dingtalk.violations == []
    (req,) = dingtalk.calls("/robot/send")
    assert req.query["access_token"] == ["robot-token"]
    assert req.query["timestamp"][0].isdigit() and req.query["sign"]
    body = req.json()
    assert body["msgtype"] == "text"
    assert body["text"]["content"].startswith("Disk almost full\ndb-1 is at 91%")
    assert "@13800000001" in body["text"]["content"]
    assert "@manager4220" in body["text"]["content"]
    assert body["at"] == {
        "atMobiles": ["13800000001"],
        "atUserIds": ["manager4220"],
        "isAtAll": False,
    }


def test_robot_wrong_secret_is_rejected_as_permanent(dingtalk):
    with pytest.raises(TransportError) as err:
        robot(dingtalk, secret="SECwrong").send(outbound())

    assert err.value.permanent is True
    assert "310000" in err.value.message
    assert dingtalk.violations == ["POST /robot/send: sign does not match"]


def test_robot_without_secret_on_a_signed_robot_fails(dingtalk):
    result = robot(dingtalk, secret="").send_batch([outbound(3)])[0]

    assert not result.ok and result.permanent
    assert dingtalk.violations == ["POST /robot/send: timestamp missing"]


def test_robot_markdown_uses_subject_as_title(dingtalk):
    robot(dingtalk).send(
        outbound(body="## db-1\n**91%** used", mentions=MENTIONS[:1], extra={"msgtype": "markdown"})
    )

    body = dingtalk.calls("/robot/send")[0].json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "Disk almost full"
    assert body["markdown"]["text"].startswith("## db-1\n**91%** used")
    assert body["at"]["atMobiles"] == ["13800000001"]
    assert dingtalk.violations == []


def test_robot_action_card_with_buttons(dingtalk):
    extra = {
        "msgtype": "actionCard",
        "btns": [
            {"title": "Open", "action_url": "https://ops.example.com/db-1"},
            {"title": "Ack", "action_url": "https://ops.example.com/ack"},
        ],
    }
    robot(dingtalk).send(outbound(extra=extra))

    card = dingtalk.calls("/robot/send")[0].json()["actionCard"]
    assert card["title"] == "Disk almost full"
    assert card["btns"][0] == {"title": "Open", "actionURL": "https://ops.example.com/db-1"}
    assert dingtalk.violations == []


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [
        ({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}, False),
        ({"errcode": -1, "errmsg": "系统繁忙"}, False),
        ({"errcode": 310000, "errmsg": "keywords not in content"}, True),
        ({"errcode": 300001, "errmsg": "token is not exist"}, True),
    ],
)
def test_robot_error_classes(dingtalk, reply, permanent):
    dingtalk.fail_next(Reply(200, reply))

    result = robot(dingtalk).send_batch([outbound(5)])[0]

    assert not result.ok
    assert result.permanent is permanent
    assert str(reply["errcode"]) in result.error
    if reply["errcode"] == 130101:
        assert result.retry_after == 60


def test_robot_server_error_and_refused_connection_are_transient(dingtalk):
    dingtalk.fail_next(Reply(502, "<html>bad gateway</html>", {"Content-Type": "text/html"}))
    assert robot(dingtalk).send_batch([outbound()])[0].permanent is False

    provider = DingTalkRobotProvider({"webhook_url": closed_port_url() + "/robot/send"})
    with pytest.raises(TransportError) as err:
        provider.send(outbound())
    assert err.value.permanent is False


def test_robot_unknown_msgtype_is_a_config_error(dingtalk):
    with pytest.raises(ConfigError):
        robot(dingtalk).send(outbound(extra={"msgtype": "carousel"}))
    assert dingtalk.requests == []


def test_robot_test_connection_describes_without_posting(dingtalk):
    text = robot(dingtalk).test_connection()

    assert "would POST" in text and "signed" in text
    assert "robot-token" not in text
    assert dingtalk.requests == []


# --- work notice ---------------------------------------------------------------------


def test_work_notice_fetches_a_token_once_and_reuses_it(dingtalk):
    first = notice(dingtalk).send(outbound(1, address="user001"))
    # A new provider instance (another worker) finds the token in the shared cache.
    second = notice(dingtalk).send(outbound(2, address="user002"))

    assert first.ok and second.ok
    assert len(dingtalk.calls("/gettoken")) == 1
    sends = dingtalk.calls(FakeDingTalk.SEND)
    assert [r.query["access_token"] for r in sends] == [["ding-1"], ["ding-1"]]
    assert sends[0].json() == {
        "agent_id": 123456,
        "userid_list": "user001",
        "msg": {"msgtype": "text", "text": {"content": "Disk almost full\ndb-1 is at 91%"}},
    }
    assert first.provider_message_id == "256271667526"
    assert second.provider_message_id == "256271667527"
    assert dingtalk.violations == []


def test_work_notice_refreshes_an_expired_token_once(dingtalk):
    notice(dingtalk).send(outbound(1, address="user001"))
    dingtalk.tokens.expire_all()

    result = notice(dingtalk).send(outbound(2, address="user001"))

    assert result.ok
    assert len(dingtalk.calls("/gettoken")) == 2
    assert [r.query["access_token"][0] for r in dingtalk.calls(FakeDingTalk.SEND)] == [
        "ding-1",
        "ding-1",
        "ding-2",
    ]


def test_work_notice_batches_identical_content_into_one_call(dingtalk):
    messages = [outbound(i, address=f"user{i}") for i in (1, 2, 3)]
    messages.append(outbound(4, address="user4", body="another text"))
    messages.append(outbound(5, address=""))

    results = notice(dingtalk).send_batch(messages)

    assert [r.ok for r in results] == [True, True, True, True, False]
    assert results[4].permanent and "userid" in results[4].error
    lists = sorted(r.json()["userid_list"] for r in dingtalk.calls(FakeDingTalk.SEND))
    assert lists == ["user1,user2,user3", "user4"]
    assert results[0].provider_message_id == results[2].provider_message_id
    assert dingtalk.violations == []


def test_work_notice_markdown_and_action_card(dingtalk):
    provider = notice(dingtalk)
    provider.send(outbound(1, address="u1", extra={"msgtype": "markdown"}))
    provider.send(
        outbound(
            2,
            address="u1",
            extra={
                "msgtype": "action_card",
                "single_title": "Open",
                "single_url": "https://ops.example.com",
            },
        )
    )

    first, second = (r.json()["msg"] for r in dingtalk.calls(FakeDingTalk.SEND))
    assert first == {
        "msgtype": "markdown",
        "markdown": {"title": "Disk almost full", "text": "db-1 is at 91%"},
    }
    assert second["action_card"] == {
        "title": "Disk almost full",
        "markdown": "db-1 is at 91%",
        "single_title": "Open",
        "single_url": "https://ops.example.com",
    }
    assert dingtalk.violations == []


def test_work_notice_wrong_app_secret_is_permanent(dingtalk):
    with pytest.raises(TransportError) as err:
        notice(dingtalk, app_secret="nope").send(outbound(address="u1"))

    assert err.value.permanent is True
    assert "40089" in err.value.message
    assert dingtalk.calls(FakeDingTalk.SEND) == []


def test_work_notice_rate_limit_is_transient(dingtalk):
    dingtalk.fail_next(Reply(200, {"errcode": 90018, "errmsg": "当前请求的并发数过多"}))

    result = notice(dingtalk).send_batch([outbound(address="u1")])[0]

    assert not result.ok and result.permanent is False


def test_work_notice_test_connection_gets_a_token(dingtalk):
    assert "access token" in notice(dingtalk).test_connection()
    assert len(dingtalk.calls("/gettoken")) == 1
    with pytest.raises(TransportError):
        notice(dingtalk, app_key="other").test_connection()


def test_validate_config():
    assert DingTalkRobotProvider.validate_config({}) == {"webhook_url": "This key is required."}
    assert "webhook_url" in DingTalkRobotProvider.validate_config({"webhook_url": "oapi/robot"})
    assert (
        DingTalkRobotProvider.validate_config(
            {"webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=x"}
        )
        == {}
    )
    errors = DingTalkWorkNoticeProvider.validate_config(
        {"app_key": "k", "app_secret": "s", "agent_id": "abc"}
    )
    assert errors == {"agent_id": "Must be a number."}
