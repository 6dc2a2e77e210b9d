"""Apprise for real, with json:// URLs that point at a loopback HTTP endpoint."""

from __future__ import annotations

import pytest

from channels_app.channels.apprise import AppriseProvider
from channels_app.channels.base import ConfigError, TransportError
from tests.servers import Reply

from .fakes import FakeJSONEndpoint, outbound


def test_notify_posts_title_and_body(json_endpoint):
    provider = AppriseProvider({"url": json_endpoint.apprise_url()})

    result = provider.send(outbound(61, extra={"notify_type": "warning"}))

    assert result.ok and result.delivery_id == 61
    (req,) = json_endpoint.calls(FakeJSONEndpoint.PATH)
    body = req.json()
    assert body["title"] == "Disk almost full"
    assert body["message"] == "db-1 is at 91%"
    assert body["type"] == "warning"
    assert json_endpoint.violations == []


def test_several_urls_each_get_the_message(json_endpoint):
    url = json_endpoint.apprise_url()
    AppriseProvider({"url": f"{url}, {url}?method=POST"}).send(outbound())
    assert len(json_endpoint.calls(FakeJSONEndpoint.PATH)) == 2


def test_a_failing_service_is_transient(json_endpoint):
    json_endpoint.fail_next(Reply(500, {"error": "down"}))
    result = AppriseProvider({"url": json_endpoint.apprise_url()}).send_batch([outbound()])[0]
    assert not result.ok and result.permanent is False

    unreachable = json_endpoint.apprise_url("/missing")
    with pytest.raises(TransportError) as err:
        AppriseProvider({"url": unreachable}).send(outbound())
    assert err.value.permanent is False


def test_bad_url_is_a_config_error():
    with pytest.raises(ConfigError):
        AppriseProvider({"url": "definitely not a url"}).send(outbound())
    assert "url" in AppriseProvider.validate_config({"url": "nope://"})
    assert AppriseProvider.validate_config({"url": "json://127.0.0.1:1/x"}) == {}


def test_test_connection_lists_services_without_secrets(json_endpoint):
    url = f"json://user:s3cret@127.0.0.1:{json_endpoint.server.port}/notify"
    text = AppriseProvider({"url": url}).test_connection()
    assert "1 service(s)" in text and "s3cret" not in text
    assert json_endpoint.requests == []
