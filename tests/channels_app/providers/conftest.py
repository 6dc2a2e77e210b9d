"""Fixtures for the provider adapter tests: provider fakes on loopback ports, one
server per session, reset before each test."""

from __future__ import annotations

import pytest

from .fakes import FakeDingTalk, FakeProvider


def _session_fake(fake: FakeProvider):
    fake.start()
    yield fake
    fake.stop()


def _fresh(fake: FakeProvider) -> FakeProvider:
    fake.reset()
    return fake


@pytest.fixture(scope="session")
def _dingtalk():
    yield from _session_fake(FakeDingTalk(robot_secret="SECdeadbeef"))


@pytest.fixture
def dingtalk(_dingtalk):
    return _fresh(_dingtalk)
