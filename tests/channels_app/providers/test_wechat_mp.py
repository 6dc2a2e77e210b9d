"""WeChat official account template messages against a loopback server."""

from __future__ import annotations

import threading

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from channels_app.channels.base import ConfigError, TransportError
from channels_app.channels.wechat_mp import WeChatMPProvider
from tests.servers import Reply

from .fakes import FakeWeChatMP, outbound

EXTRA = {
    "template_id": "tpl-shipped",
    "url": "https://shop.example.com/o/A123",
    "data": {
        "first": "Your order shipped",
        "keyword1": "A123",
        "remark": {"value": "Thanks", "color": "#173177"},
    },
}


def mp(wechat_mp, **config) -> WeChatMPProvider:
    return WeChatMPProvider(
        {"app_id": "wx-app", "app_secret": "wx-secret", "base_url": wechat_mp.url, **config}
    )


def test_template_message_and_token_caching(wechat_mp):
    first = mp(wechat_mp).send(outbound(11, address="o-follower-1", extra=EXTRA))
    second = mp(wechat_mp).send(outbound(12, address="o-follower-2", extra=EXTRA))

    assert first.ok and first.provider_message_id == "200228332"
    assert second.ok and second.provider_message_id == "200228333"
    assert len(wechat_mp.calls("/cgi-bin/token")) == 1
    req = wechat_mp.calls(FakeWeChatMP.SEND)[0]
    assert req.query["access_token"] == ["wx-1"]
    assert req.json() == {
        "touser": "o-follower-1",
        "template_id": "tpl-shipped",
        "url": "https://shop.example.com/o/A123",
        "client_msg_id": "msgcenter-11",
        "data": {
            "first": {"value": "Your order shipped"},
            "keyword1": {"value": "A123"},
            "remark": {"value": "Thanks", "color": "#173177"},
        },
    }
    assert wechat_mp.violations == []


@pytest.mark.parametrize("how", ["expired", "revoked"])
def test_token_refreshed_once_on_invalid_token(wechat_mp, how):
    mp(wechat_mp).send(outbound(1, address="o-follower-1", extra=EXTRA))
    if how == "expired":
        wechat_mp.tokens.expire_all()  # 42001
    else:
        wechat_mp.tokens.valid.clear()  # 40001: another client fetched a newer token

    result = mp(wechat_mp).send(outbound(2, address="o-follower-1", extra=EXTRA))

    assert result.ok
    assert len(wechat_mp.calls("/cgi-bin/token")) == 2
    assert [r.query["access_token"][0] for r in wechat_mp.calls(FakeWeChatMP.SEND)] == [
        "wx-1",
        "wx-1",
        "wx-2",
    ]


def test_a_retried_send_is_not_delivered_twice(wechat_mp):
    first = mp(wechat_mp).send(outbound(5, address="o-follower-1", extra=EXTRA))
    again = mp(wechat_mp).send(outbound(5, address="o-follower-1", extra=EXTRA))
    assert again.provider_message_id == first.provider_message_id


def test_unsubscribed_user_is_permanent(wechat_mp):
    with pytest.raises(TransportError) as err:
        mp(wechat_mp).send(outbound(address="o-stranger", extra=EXTRA))
    assert err.value.permanent and "43004" in err.value.message


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [
        ({"errcode": -1, "errmsg": "system error"}, False),
        ({"errcode": 45009, "errmsg": "reach max api daily quota limit"}, False),
        ({"errcode": 40003, "errmsg": "invalid openid"}, True),
    ],
)
def test_error_classes(wechat_mp, reply, permanent):
    wechat_mp.fail_next(Reply(200, reply))
    result = mp(wechat_mp).send_batch([outbound(address="o-follower-1", extra=EXTRA)])[0]
    assert not result.ok and result.permanent is permanent


def test_bad_template_and_missing_template_id(wechat_mp):
    with pytest.raises(TransportError) as err:
        mp(wechat_mp).send(
            outbound(address="o-follower-1", extra={**EXTRA, "template_id": "tpl-unknown"})
        )
    assert err.value.permanent and "40037" in err.value.message

    with pytest.raises(ConfigError):
        mp(wechat_mp).send(outbound(address="o-follower-1", extra={"data": {}}))


def test_wrong_secret_and_test_connection(wechat_mp):
    with pytest.raises(TransportError) as err:
        mp(wechat_mp, app_secret="nope").test_connection()
    assert err.value.permanent and "40001" in err.value.message
    assert wechat_mp.calls(FakeWeChatMP.SEND) == []

    assert "access token" in mp(wechat_mp).test_connection()


def test_token_cached_until_shortly_before_expiry(wechat_mp):
    provider = mp(wechat_mp)
    provider.test_connection()

    ttl = redis.Redis.from_url(settings.REDIS_URL).ttl(cache.make_key(provider.token.key))
    assert 7200 - 300 - 5 <= ttl <= 7200 - 300


def test_token_cache_is_keyed_by_credentials(wechat_mp):
    mp(wechat_mp).test_connection()
    other = mp(wechat_mp, app_secret="rotated")

    assert other.token.key != mp(wechat_mp).token.key
    assert "wx-secret" not in mp(wechat_mp).token.key
    with pytest.raises(TransportError):
        other.test_connection()  # a rotated secret never reuses the old token
    assert len(wechat_mp.calls("/cgi-bin/token")) == 2


def test_concurrent_workers_fetch_one_token(wechat_mp):
    """A new WeChat token revokes the previous one: workers that all fetched at once
    would revoke each other's. Only one fetches; the others wait for its token."""
    wechat_mp.token_delay = 0.3
    results = []

    def worker(i: int) -> None:
        provider = mp(wechat_mp)
        results.append(provider.send(outbound(i, address="o-follower-1", extra=EXTRA)))
        provider.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)

    assert len(results) == 4 and all(r.ok for r in results)
    assert len(wechat_mp.calls("/cgi-bin/token")) == 1
    assert {r.query["access_token"][0] for r in wechat_mp.calls(FakeWeChatMP.SEND)} == {"wx-1"}
