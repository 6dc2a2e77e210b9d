"""The templates API (API.md "Templates"): shapes, edits, publish, archive, preview."""

from __future__ import annotations

import pytest

from channels_app.models import ChannelAccount
from templates_app.models import MessageTemplate, TemplateVersion
from tests.api_helpers import assert_error

ORDER_SHIPPED = {
    "code": "order_shipped",
    "name": "Order shipped",
    "category": "notification",
    "params_schema": {
        "type": "object",
        "required": ["order_no"],
        "properties": {"order_no": {"type": "string"}},
    },
    "contents": [
        {
            "channel": "inapp",
            "subject": "Order {{ order_no }} shipped",
            "body": "Your order {{ order_no }} is on its way.",
        },
        {
            "channel": "email",
            "subject": "Order {{ order_no }} shipped",
            "body": "Order {{ order_no }}",
            "body_html": "<p>Order {{ order_no }}</p>",
        },
    ],
}


def create(api, **overrides):
    response = api.post("/api/v1/templates", {**ORDER_SHIPPED, **overrides}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


# --- create / read ---------------------------------------------------------------------


def test_create_answers_the_draft_with_its_contents(api):
    body = create(api)
    assert body["code"] == "order_shipped"
    assert body["name"] == "Order shipped"
    assert body["category"] == "notification"
    assert body["status"] == "draft"
    assert body["version"] is None
    assert body["params_schema"] == ORDER_SHIPPED["params_schema"]
    contents = {c["channel"]: c for c in body["contents"]}
    assert set(contents) == {"inapp", "email"}
    assert contents["email"] == {
        "channel": "email",
        "locale": "",
        "subject": "Order {{ order_no }} shipped",
        "body": "Order {{ order_no }}",
        "body_html": "<p>Order {{ order_no }}</p>",
        "extra": {},
        "account": None,
        "fallback_channel": "",
    }
    assert api.get("/api/v1/templates/order_shipped").json() == body


def test_create_twice_is_a_conflict(api):
    create(api)
    error = assert_error(
        api.post("/api/v1/templates", ORDER_SHIPPED, format="json"), 409, "conflict"
    )
    assert error["details"] == {"template": "order_shipped"}


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"code": "not a slug"}, "code"),
        ({"code": 12}, "code"),
        ({"name": ""}, "name"),
        ({"name": 123}, "name"),
        ({"category": "spam"}, "category"),
        ({"params_schema": ["type", "object"]}, "params_schema"),
        ({"contents": {"channel": "email"}}, "contents"),
        ({"contents": [{"channel": "email"}, {"channel": "pigeon"}]}, "contents"),
        ({"contents": [{"channel": "email", "body": ["x"]}]}, "contents"),
        ({"daily_cap": "many"}, "daily_cap"),
        ({"daily_cap": -1}, "daily_cap"),
        ({"remind_after_seconds": 3600}, "remind_channel"),
    ],
)
def test_create_refuses_bad_fields(api, overrides, field):
    response = api.post("/api/v1/templates", {**ORDER_SHIPPED, **overrides}, format="json")
    error = assert_error(response, 400, "invalid_request")
    assert field in error["details"]["fields"]
    assert not MessageTemplate.objects.exists()


def test_unknown_channel_names_the_content(api):
    response = api.post(
        "/api/v1/templates",
        {
            **ORDER_SHIPPED,
            "contents": [{"channel": "email", "body": "x"}, {"channel": "pigeon", "body": "x"}],
        },
        format="json",
    )
    error = assert_error(response, 400, "invalid_request")
    assert error["details"]["fields"]["contents"] == {
        "1": {"channel": ['"pigeon" is not a valid choice.']}
    }
    assert "pigeon" in error["message"]


def test_invalid_json_schema_is_refused(api):
    response = api.post(
        "/api/v1/templates", {**ORDER_SHIPPED, "params_schema": {"type": "nope"}}, format="json"
    )
    error = assert_error(response, 400, "invalid_request")
    assert error["details"] == {"field": "params_schema"}
    assert "JSON Schema" in error["message"]


def test_duplicate_content_for_a_channel_is_refused(api):
    response = api.post(
        "/api/v1/templates",
        {
            **ORDER_SHIPPED,
            "contents": [{"channel": "email", "body": "a"}, {"channel": "email", "body": "b"}],
        },
        format="json",
    )
    assert_error(response, 400, "invalid_request")
    assert not MessageTemplate.objects.exists()


def test_contents_may_be_per_locale(api):
    body = create(
        api,
        contents=[
            {"channel": "email", "body": "Hello"},
            {"channel": "email", "locale": "zh-CN", "body": "你好"},
        ],
    )
    assert sorted(c["locale"] for c in body["contents"]) == ["", "zh-CN"]


def test_pinned_account_must_exist_and_match_the_channel(api):
    email = ChannelAccount.objects.create(channel="email", provider="smtp", name="mail")
    hook = ChannelAccount.objects.create(
        channel="webhook", provider="webhook", name="hook", config={"url": "http://127.0.0.1:9/"}
    )
    body = create(api, contents=[{"channel": "email", "body": "x", "account": str(email.pk)}])
    assert body["contents"][0]["account"] == str(email.pk)
    for account in (hook.pk, 999999, "x"):
        response = api.post(
            "/api/v1/templates",
            {
                **ORDER_SHIPPED,
                "code": "other",
                "contents": [{"channel": "email", "body": "x", "account": account}],
            },
            format="json",
        )
        assert_error(response, 400, "invalid_request")


def test_unknown_template_is_template_not_found_everywhere(api):
    for method, suffix in [
        ("get", ""),
        ("patch", ""),
        ("post", "/publish"),
        ("post", "/archive"),
        ("post", "/restore"),
        ("post", "/preview"),
    ]:
        response = getattr(api, method)(f"/api/v1/templates/nope{suffix}", {}, format="json")
        error = assert_error(response, 404, "template_not_found")
        assert error["details"] == {"template": "nope"}


# --- list ------------------------------------------------------------------------------


def test_list_is_paginated_with_a_next_link(api):
    for code in ("a_one", "b_two", "c_three"):
        create(api, code=code)
    first = api.get("/api/v1/templates?limit=2").json()
    assert [t["code"] for t in first["results"]] == ["a_one", "b_two"]
    assert first["next"]
    second = api.get(first["next"]).json()
    assert [t["code"] for t in second["results"]] == ["c_three"]
    assert second["next"] is None


def test_list_filters_by_status_and_category(api):
    create(api, code="a_draft")
    create(api, code="b_marketing", category="marketing")
    api.post("/api/v1/templates/b_marketing/publish")
    published = api.get("/api/v1/templates?status=published").json()["results"]
    assert [t["code"] for t in published] == ["b_marketing"]
    notifications = api.get("/api/v1/templates?category=notification").json()["results"]
    assert [t["code"] for t in notifications] == ["a_draft"]
    assert_error(api.get("/api/v1/templates?status=gone"), 400, "invalid_request")


def test_list_with_a_broken_cursor_is_a_bad_request(api):
    assert_error(api.get("/api/v1/templates?cursor=garbage"), 400, "invalid_request")


def test_list_runs_a_fixed_number_of_queries(api, django_assert_max_num_queries):
    for i in range(6):
        create(api, code=f"t_{i}")
    with django_assert_max_num_queries(5):  # auth key, client update, page, contents
        assert len(api.get("/api/v1/templates").json()["results"]) == 6


# --- edit ------------------------------------------------------------------------------


def test_patch_edits_the_draft_and_keeps_contents_left_out(api):
    create(api)
    response = api.patch("/api/v1/templates/order_shipped", {"name": "Shipped!"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Shipped!"
    assert len(response.json()["contents"]) == 2


def test_patch_replaces_contents_when_given(api):
    create(api)
    response = api.patch(
        "/api/v1/templates/order_shipped",
        {"contents": [{"channel": "sms", "body": "Order {{ order_no }} shipped"}]},
        format="json",
    )
    assert response.status_code == 200
    assert [c["channel"] for c in response.json()["contents"]] == ["sms"]


def test_patch_cannot_change_the_code(api):
    create(api)
    response = api.patch("/api/v1/templates/order_shipped", {"code": "renamed"}, format="json")
    error = assert_error(response, 400, "invalid_request")
    assert "code" in error["details"]["fields"]
    same = api.patch("/api/v1/templates/order_shipped", {"code": "order_shipped"}, format="json")
    assert same.status_code == 200


def test_patch_refuses_a_bad_schema_and_wrong_types(api):
    create(api)
    assert_error(
        api.patch("/api/v1/templates/order_shipped", {"params_schema": {"type": 5}}, format="json"),
        400,
        "invalid_request",
    )
    assert_error(
        api.patch("/api/v1/templates/order_shipped", {"contents": "email"}, format="json"),
        400,
        "invalid_request",
    )
    assert (
        api.get("/api/v1/templates/order_shipped").json()["params_schema"]
        == ORDER_SHIPPED["params_schema"]
    )


# --- publish ---------------------------------------------------------------------------


def test_publish_answers_code_status_and_version(api):
    create(api)
    response = api.post("/api/v1/templates/order_shipped/publish")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("code", "status", "version")} == {
        "code": "order_shipped",
        "status": "published",
        "version": 1,
    }
    detail = api.get("/api/v1/templates/order_shipped").json()
    assert (detail["status"], detail["version"]) == ("published", 1)


def test_each_publish_after_an_edit_bumps_the_version(api):
    create(api)
    assert api.post("/api/v1/templates/order_shipped/publish").json()["version"] == 1
    api.patch(
        "/api/v1/templates/order_shipped",
        {"contents": [{"channel": "inapp", "body": "v2 {{ order_no }}"}]},
        format="json",
    )
    assert api.post("/api/v1/templates/order_shipped/publish").json()["version"] == 2
    api.patch("/api/v1/templates/order_shipped", {"category": "alert"}, format="json")
    assert api.post("/api/v1/templates/order_shipped/publish").json()["version"] == 3
    assert TemplateVersion.objects.filter(template__code="order_shipped").count() == 3


def test_publishing_an_unchanged_draft_keeps_the_version(api):
    create(api)
    api.post("/api/v1/templates/order_shipped/publish")
    again = api.post("/api/v1/templates/order_shipped/publish")
    assert again.status_code == 200
    assert again.json()["version"] == 1
    assert TemplateVersion.objects.count() == 1


def test_publish_without_contents_is_refused(api):
    create(api, contents=[])
    assert_error(api.post("/api/v1/templates/order_shipped/publish"), 400, "invalid_request")


def test_publish_of_a_template_that_does_not_compile_names_channel_field_and_line(api):
    create(
        api,
        contents=[
            {"channel": "inapp", "body": "fine {{ order_no }}"},
            {"channel": "email", "subject": "ok", "body": "Hello\n\nOrder {{ order_no "},
        ],
    )
    error = assert_error(
        api.post("/api/v1/templates/order_shipped/publish"), 400, "invalid_template"
    )
    assert {k: error["details"][k] for k in ("channel", "field", "line")} == {
        "channel": "email",
        "field": "body",
        "line": 3,
    }
    assert api.get("/api/v1/templates/order_shipped").json()["status"] == "draft"
    assert not TemplateVersion.objects.exists()


def test_a_broken_template_in_extra_is_caught_at_publish(api):
    create(
        api,
        contents=[
            {
                "channel": "dingtalk",
                "body": "x",
                "extra": {"msgtype": "markdown", "title": "{% if %}"},
            }
        ],
    )
    error = assert_error(
        api.post("/api/v1/templates/order_shipped/publish"), 400, "invalid_template"
    )
    assert (error["details"]["channel"], error["details"]["field"]) == ("dingtalk", "extra")


# --- archive / restore -------------------------------------------------------------------


def test_archive_then_restore(api):
    create(api)
    api.post("/api/v1/templates/order_shipped/publish")
    archived = api.post("/api/v1/templates/order_shipped/archive")
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived"
    assert_error(api.post("/api/v1/templates/order_shipped/archive"), 409, "invalid_transition")
    assert_error(api.post("/api/v1/templates/order_shipped/publish"), 409, "invalid_transition")
    assert_error(
        api.patch("/api/v1/templates/order_shipped", {"name": "x"}, format="json"),
        409,
        "invalid_transition",
    )
    restored = api.post("/api/v1/templates/order_shipped/restore")
    assert restored.json()["status"] == "draft"
    assert_error(api.post("/api/v1/templates/order_shipped/restore"), 409, "invalid_transition")
    assert api.post("/api/v1/templates/order_shipped/publish").json()["version"] == 2


# --- preview ---------------------------------------------------------------------------


def test_preview_renders_one_channel(api):
    create(api)
    response = api.post(
        "/api/v1/templates/order_shipped/preview",
        {"params": {"order_no": "A123"}, "channel": "email"},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("subject", "body", "body_html")} == {
        "subject": "Order A123 shipped",
        "body": "Order A123",
        "body_html": "<p>Order A123</p>",
    }


def test_preview_defaults_to_the_sample_params(api):
    create(api, sample_params={"order_no": "S-1"})
    body = api.post(
        "/api/v1/templates/order_shipped/preview", {"channel": "inapp"}, format="json"
    ).json()
    assert body["subject"] == "Order S-1 shipped"


def test_preview_with_params_that_fail_the_schema(api):
    create(api)
    response = api.post(
        "/api/v1/templates/order_shipped/preview",
        {"params": {"order_no": 5}, "channel": "email"},
        format="json",
    )
    error = assert_error(response, 400, "invalid_params")
    assert error["details"]["errors"] == [
        {"path": "order_no", "message": "5 is not of type 'string'"}
    ]


def test_preview_refuses_unknown_or_absent_channel_and_bad_params(api):
    create(api)
    url = "/api/v1/templates/order_shipped/preview"
    assert_error(
        api.post(url, {"params": {"order_no": "1"}, "channel": "pigeon"}, format="json"),
        400,
        "invalid_request",
    )
    error = assert_error(
        api.post(url, {"params": {"order_no": "1"}, "channel": "sms"}, format="json"),
        400,
        "invalid_request",
    )
    assert error["details"] == {"channel": "sms"}
    assert_error(api.post(url, {"params": ["order_no"]}, format="json"), 400, "invalid_request")
