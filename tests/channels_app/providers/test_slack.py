"""Slack incoming webhook against a loopback hook that answers like Slack."""

from __future__ import annotations

import pytest

from channels_app.channels.base import TransportError
from channels_app.channels.slack import SlackWebhookProvider
from tests.servers import Reply

from .fakes import FakeSlack, closed_port_url, outbound

MENTIONS = [
    {"external_id": "u-1", "phone": "", "address": "U024BE7LH", "name": "Li Lei"},
    {"external_id": "u-2", "phone": "13800000002", "address": "", "name": "No Slack"},
]


def hook(slack) -> SlackWebhookProvider:
    return SlackWebhookProvider({"webhook_url": slack.webhook_url})


def test_text_with_bold_subject_and_mentions(slack):
    result = hook(slack).send(outbound(51, mentions=MENTIONS))

    assert result.ok and result.delivery_id == 51
    assert slack.calls(FakeSlack.HOOK)[0].json() == {
        "text": "*Disk almost full*\ndb-1 is at 91%\n<@U024BE7LH>"
    }
    assert slack.violations == []


def test_blocks_from_extra(slack):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*db-1* 91%"}}]
    hook(slack).send(outbound(extra={"blocks": blocks, "unfurl_links": False}))

    body = slack.calls(FakeSlack.HOOK)[0].json()
    assert body["blocks"] == blocks and body["unfurl_links"] is False
    assert body["text"].startswith("*Disk almost full*")
    assert slack.violations == []


@pytest.mark.parametrize(
    ("reply", "permanent", "retry_after"),
    [
        (FakeSlack.text(400, "invalid_payload"), True, None),
        (FakeSlack.text(404, "channel_not_found"), True, None),
        (FakeSlack.text(410, "channel_is_archived"), True, None),
        (FakeSlack.text(403, "action_prohibited"), True, None),
        (
            Reply(429, "rate_limited", {"Content-Type": "text/html", "Retry-After": "30"}),
            False,
            30.0,
        ),
        (FakeSlack.text(500, "rollup_error"), False, None),
    ],
)
def test_error_classes(slack, reply, permanent, retry_after):
    slack.fail_next(reply)
    result = hook(slack).send_batch([outbound()])[0]
    assert not result.ok and result.permanent is permanent
    assert reply.body in result.error and result.retry_after == retry_after


def test_empty_message_is_refused_by_slack_as_permanent(slack):
    with pytest.raises(TransportError) as err:
        hook(slack).send(outbound(subject="", body=""))
    assert err.value.permanent and "no_text" in err.value.message


def test_unreachable_is_transient_and_test_connection_sends_nothing(slack):
    with pytest.raises(TransportError) as err:
        SlackWebhookProvider({"webhook_url": closed_port_url() + "/services/x"}).send(outbound())
    assert err.value.permanent is False

    text = hook(slack).test_connection()
    assert "would POST" in text and "XXXXXXXX" not in text
    assert slack.requests == []
