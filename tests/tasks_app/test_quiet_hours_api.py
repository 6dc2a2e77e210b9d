"""/api/v1/quiet-hours (scope `manage`)."""

from __future__ import annotations

from datetime import time

import pytest

from tasks_app.models import QuietHours
from tests.api_helpers import assert_error

NIGHT = {
    "name": "night",
    "start": "22:00",
    "end": "08:00",
    "timezone": "Asia/Shanghai",
    "categories": ["marketing"],
    "action": "defer",
    "enabled": True,
}


def create(api, **overrides) -> dict:
    response = api.post("/api/v1/quiet-hours", {**NIGHT, **overrides}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_read_list_edit_delete(api):
    body = create(api)
    assert isinstance(body["id"], str)
    assert {k: body[k] for k in NIGHT} == NIGHT
    assert body["channels"] == []
    stored = QuietHours.objects.get(pk=body["id"])
    assert (stored.start, stored.end) == (time(22, 0), time(8, 0))

    url = f"/api/v1/quiet-hours/{body['id']}"
    assert api.get(url).json() == body
    assert api.get("/api/v1/quiet-hours").json()["results"] == [body]

    patched = api.patch(
        url, {"end": "07:30", "action": "drop", "channels": ["sms", "email"]}, format="json"
    )
    assert patched.status_code == 200
    assert {k: patched.json()[k] for k in ("start", "end", "action", "channels")} == {
        "start": "22:00",
        "end": "07:30",
        "action": "drop",
        "channels": ["sms", "email"],
    }

    assert api.delete(url).status_code == 204
    assert_error(api.get(url), 404, "not_found")
    assert not QuietHours.objects.exists()


def test_only_name_and_window_are_required(api):
    response = api.post(
        "/api/v1/quiet-hours", {"name": "n", "start": "23:00", "end": "06:00"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("timezone", "categories", "channels", "action", "enabled")} == {
        "timezone": "",
        "categories": [],
        "channels": [],
        "action": "defer",
        "enabled": True,
    }
    for field in ("name", "start", "end"):
        partial = {"name": "n", "start": "23:00", "end": "06:00"}
        del partial[field]
        error = assert_error(
            api.post("/api/v1/quiet-hours", partial, format="json"), 400, "invalid_request"
        )
        assert field in error["details"]["fields"]


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"start": "25:00"}, "start"),
        ({"start": "22:00:00"}, "start"),
        ({"start": "10pm"}, "start"),
        ({"start": 2200}, "start"),
        ({"end": "8:00"}, "end"),
        ({"end": "22:00"}, "end"),
        ({"timezone": "Asia/Nowhere"}, "timezone"),
        ({"categories": ["spam"]}, "categories"),
        ({"categories": "marketing"}, "categories"),
        ({"channels": ["pigeon"]}, "channels"),
        ({"action": "later"}, "action"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_fields_are_invalid_requests(api, overrides, field):
    response = api.post("/api/v1/quiet-hours", {**NIGHT, **overrides}, format="json")
    error = assert_error(response, 400, "invalid_request")
    assert field in error["details"]["fields"]
    assert not QuietHours.objects.exists()


def test_patch_cannot_make_the_window_empty(api):
    body = create(api)
    response = api.patch(f"/api/v1/quiet-hours/{body['id']}", {"end": "22:00"}, format="json")
    assert_error(response, 400, "invalid_request")
    assert api.get(f"/api/v1/quiet-hours/{body['id']}").json()["end"] == "08:00"


@pytest.mark.parametrize("pk", ["999", "abc", "99999999999999999999999", "1.5"])
def test_unknown_ids_are_not_found(api, pk):
    for method in ("get", "patch", "delete"):
        response = getattr(api, method)(f"/api/v1/quiet-hours/{pk}", {}, format="json")
        assert_error(response, 404, "not_found")


def test_needs_the_manage_scope(api_send_only):
    assert_error(api_send_only.get("/api/v1/quiet-hours"), 403, "forbidden")
