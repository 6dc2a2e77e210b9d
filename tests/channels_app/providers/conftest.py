"""Fixtures for the provider adapter tests: provider fakes on loopback ports, one
server per session (stopping one costs half a second), reset before each test."""

from __future__ import annotations

import pytest

from .fakes import (
    FakeAliyunSMS,
    FakeDingTalk,
    FakeFeishu,
    FakeJSONEndpoint,
    FakeProvider,
    FakeSlack,
    FakeTencentSMS,
    FakeTwilio,
    FakeWeChatMP,
    FakeWeCom,
)


def _session_fake(fake: FakeProvider):
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def _dingtalk():
    yield from _session_fake(FakeDingTalk(robot_secret="SECdeadbeef"))


@pytest.fixture
def dingtalk(_dingtalk):
    _dingtalk.reset()
    return _dingtalk


@pytest.fixture(scope="session")
def _wecom():
    yield from _session_fake(FakeWeCom())


@pytest.fixture
def wecom(_wecom):
    _wecom.reset()
    return _wecom


@pytest.fixture(scope="session")
def _feishu():
    yield from _session_fake(FakeFeishu())


@pytest.fixture
def feishu(_feishu):
    _feishu.reset()
    _feishu.secret = "feishu-secret"
    return _feishu


@pytest.fixture(scope="session")
def _wechat_mp():
    yield from _session_fake(FakeWeChatMP())


@pytest.fixture
def wechat_mp(_wechat_mp):
    _wechat_mp.reset()
    return _wechat_mp


@pytest.fixture(scope="session")
def _aliyun_sms():
    yield from _session_fake(FakeAliyunSMS())


@pytest.fixture
def aliyun_sms(_aliyun_sms):
    _aliyun_sms.reset()
    return _aliyun_sms


@pytest.fixture(scope="session")
def _tencent_sms():
    yield from _session_fake(FakeTencentSMS())


@pytest.fixture
def tencent_sms(_tencent_sms):
    _tencent_sms.reset()
    return _tencent_sms


@pytest.fixture(scope="session")
def _twilio():
    yield from _session_fake(FakeTwilio())


@pytest.fixture
def twilio(_twilio):
    _twilio.reset()
    return _twilio


@pytest.fixture(scope="session")
def _slack():
    yield from _session_fake(FakeSlack())


@pytest.fixture
def slack(_slack):
    _slack.reset()
    return _slack


@pytest.fixture(scope="session")
def _json_endpoint():
    yield from _session_fake(FakeJSONEndpoint())


@pytest.fixture
def json_endpoint(_json_endpoint):
    _json_endpoint.reset()
    return _json_endpoint
