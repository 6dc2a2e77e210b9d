"""PUT/GET /api/v1/recipients/<external_id> (scope `send`)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tasks_app.models import Recipient
from tests.api_helpers import assert_error

LI_LEI = {
    "name": "Li Lei",
    "email": "lilei@example.com",
    "phone": "+8613800000000",
    "locale": "zh-CN",
    "timezone": "Asia/Shanghai",
    "addresses": {"dingtalk": "dt-1", "wecom": "wc-1", "wechat_mp": "openid-1"},
}


def test_put_creates_then_updates(api_send_only):
    api = api_send_only
    created = api.put("/api/v1/recipients/u-1001", LI_LEI, format="json")
    assert created.status_code == 201
    body = created.json()
    assert {k: body[k] for k in LI_LEI} == LI_LEI
    assert body["external_id"] == "u-1001"
    assert body["tags"] == []

    updated = api.put(
        "/api/v1/recipients/u-1001", {"phone": "+8613900000000", "tags": ["vip"]}, format="json"
    )
    assert updated.status_code == 200
    body = updated.json()
    assert body["phone"] == "+8613900000000"
    assert body["tags"] == ["vip"]
    assert body["email"] == "lilei@example.com"  # left out: kept
    assert Recipient.objects.count() == 1

    assert api.get("/api/v1/recipients/u-1001").json() == body


def test_put_with_an_empty_string_clears_a_field(api_send_only):
    api_send_only.put("/api/v1/recipients/u-1", LI_LEI, format="json")
    body = api_send_only.put("/api/v1/recipients/u-1", {"email": ""}, format="json").json()
    assert body["email"] == ""


def test_unknown_recipient_is_not_found(api_send_only):
    error = assert_error(api_send_only.get("/api/v1/recipients/nobody"), 404, "not_found")
    assert error["details"] == {"recipient": "nobody"}


def test_external_ids_may_be_any_text(api_send_only):
    external_id = "用户 42@corp"
    url = f"/api/v1/recipients/{quote(external_id)}"
    assert api_send_only.put(url, {"name": "x"}, format="json").status_code == 201
    assert api_send_only.get(url).json()["external_id"] == external_id


def test_too_long_external_id_is_refused(api_send_only):
    response = api_send_only.put(f"/api/v1/recipients/{'x' * 201}", {}, format="json")
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "body,field",
    [
        ({"email": "not-an-email"}, "email"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": 8}, "timezone"),
        ({"addresses": ["dt-1"]}, "addresses"),
        ({"addresses": {"dingtalk": 42}}, "addresses"),
        ({"addresses": {"dingtalk": {"id": "x"}}}, "addresses"),
        ({"tags": "vip"}, "tags"),
        ({"tags": ["vip", 3]}, "tags"),
        ({"name": 123}, "name"),
        ({"phone": True}, "phone"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_bad_fields_are_invalid_requests(api_send_only, body, field):
    response = api_send_only.put("/api/v1/recipients/u-1", body, format="json")
    error = assert_error(response, 400, "invalid_request")
    assert field in error["details"]["fields"]
    assert not Recipient.objects.exists()


def test_a_body_that_is_not_an_object_is_refused(api_send_only):
    response = api_send_only.put("/api/v1/recipients/u-1", ["x"], format="json")
    assert_error(response, 400, "invalid_request")
