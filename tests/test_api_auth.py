"""Authentication, scopes and the error format on the management endpoints (API.md
"Authentication" and "Errors")."""

from __future__ import annotations

from datetime import time

import pytest
from rest_framework.test import APIClient

from tasks_app.models import ApiClient, ApiKey, QuietHours
from tasks_app.services import create_api_key
from tests.api_helpers import assert_error

MANAGE = [
    ("get", "/api/v1/templates"),
    ("post", "/api/v1/templates"),
    ("get", "/api/v1/templates/t"),
    ("patch", "/api/v1/templates/t"),
    ("post", "/api/v1/templates/t/publish"),
    ("post", "/api/v1/templates/t/archive"),
    ("post", "/api/v1/templates/t/restore"),
    ("post", "/api/v1/templates/t/preview"),
    ("get", "/api/v1/quiet-hours"),
    ("post", "/api/v1/quiet-hours"),
    ("get", "/api/v1/quiet-hours/1"),
    ("patch", "/api/v1/quiet-hours/1"),
    ("delete", "/api/v1/quiet-hours/1"),
    ("get", "/api/v1/channel-accounts"),
    ("post", "/api/v1/channel-accounts"),
    ("get", "/api/v1/channel-accounts/1"),
    ("patch", "/api/v1/channel-accounts/1"),
    ("delete", "/api/v1/channel-accounts/1"),
    ("post", "/api/v1/channel-accounts/1/test"),
]
SEND = [
    ("get", "/api/v1/recipients/u-1"),
    ("put", "/api/v1/recipients/u-1"),
]


def call(client: APIClient, method: str, url: str):
    return getattr(client, method)(url, {}, format="json")


def with_header(value: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=value)
    return client


@pytest.mark.parametrize("method,url", MANAGE + SEND)
def test_no_key_is_unauthorized(anon, method, url):
    response = call(anon, method, url)
    assert_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("method,url", MANAGE + SEND)
def test_a_wrong_key_is_unauthorized(db, method, url):
    assert_error(call(with_header("Bearer mc_0000_not-a-key"), method, url), 401, "unauthorized")


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer a b", "bearer x", "Basic Zm9v"])
def test_malformed_authorization_headers_are_unauthorized(db, header):
    assert_error(with_header(header).get("/api/v1/templates"), 401, "unauthorized")


def test_revoked_keys_and_inactive_clients_are_unauthorized(db):
    key, raw = create_api_key(client_name="svc")
    client = with_header(f"Bearer {raw}")
    assert client.get("/api/v1/templates").status_code == 200
    ApiKey.objects.filter(pk=key.pk).update(revoked=True)
    assert_error(client.get("/api/v1/templates"), 401, "unauthorized")
    ApiKey.objects.filter(pk=key.pk).update(revoked=False)
    ApiClient.objects.filter(name="svc").update(is_active=False)
    assert_error(client.get("/api/v1/templates"), 401, "unauthorized")


@pytest.mark.parametrize("method,url", MANAGE)
def test_a_send_key_cannot_manage(api_send_only, method, url):
    error = assert_error(call(api_send_only, method, url), 403, "forbidden")
    assert "manage" in error["message"]


@pytest.mark.parametrize("method,url", SEND)
def test_a_manage_key_cannot_send(db, method, url):
    client = with_header(f"Bearer {create_api_key(client_name='ops', scopes=['manage'])[1]}")
    error = assert_error(call(client, method, url), 403, "forbidden")
    assert "send" in error["message"]


@pytest.mark.parametrize(
    "url", ["/api/v1/templates", "/api/v1/quiet-hours", "/api/v1/channel-accounts"]
)
def test_malformed_json_is_invalid_request(api, url):
    response = api.generic("POST", url, '{"name": "x",', content_type="application/json")
    error = assert_error(response, 400, "invalid_request")
    assert "JSON" in error["message"]


def test_malformed_json_on_put_and_patch(api):
    policy = QuietHours.objects.create(name="n", start=time(22), end=time(8))
    for method, url in (
        ("PUT", "/api/v1/recipients/u-1"),
        ("PATCH", f"/api/v1/quiet-hours/{policy.pk}"),
    ):
        response = api.generic(method, url, "{oops", content_type="application/json")
        assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "url", ["/api/v1/templates", "/api/v1/quiet-hours", "/api/v1/channel-accounts"]
)
@pytest.mark.parametrize("body", [[], "text", 42, None])
def test_a_body_that_is_not_an_object_is_invalid_request(api, url, body):
    assert_error(api.post(url, body, format="json"), 400, "invalid_request")


def test_a_form_body_is_refused(api):
    response = api.post("/api/v1/templates", {"code": "x", "name": "y"})  # multipart
    assert_error(response, 415, "invalid_request")


def test_wrong_method_is_method_not_allowed(api):
    assert_error(api.delete("/api/v1/templates"), 405, "method_not_allowed")
    assert_error(api.put("/api/v1/quiet-hours/1", {}, format="json"), 405, "method_not_allowed")
    assert_error(api.get("/api/v1/templates/t/publish"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "url",
    ["/api/v1/nothing", "/api/v2/templates", "/api/v1/templates/t/unknown", "/api/v1/templates/"],
)
def test_unknown_api_urls_answer_json_not_found(anon, url):
    assert_error(anon.get(url), 404, "not_found")


def test_unknown_urls_outside_the_api_stay_html(anon):
    response = anon.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_client_over_its_rate_limit_is_told_when_to_retry(db):
    key, raw = create_api_key(client_name="busy")
    ApiClient.objects.filter(pk=key.client_id).update(rate_limit_per_min=2)
    client = with_header(f"Bearer {raw}")
    assert [client.get("/api/v1/templates").status_code for _ in range(2)] == [200, 200]
    response = client.get("/api/v1/templates")
    error = assert_error(response, 429, "rate_limited")
    assert 0 < int(response["Retry-After"]) <= 60
    assert error["details"]["retry_after"] > 0
