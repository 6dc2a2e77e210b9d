"""/api/v1/channel-accounts (scope `manage`): validation against the provider registry,
write-only secrets, and the connection test against real loopback servers."""

from __future__ import annotations

import pytest

from channels_app.models import ChannelAccount
from tests.api_helpers import assert_error
from tests.servers import free_port

MASK = "********"
SMTP_PASSWORD = "smtp-pa55word-4f1c"
HOOK_SECRET = "hook-s3cret-9b2e"
ROBOT_TOKEN = "robot-access-token-77ad"
ROBOT_SECRET = "SECrobot-secret-c0de"


def create(api, body: dict) -> dict:
    response = api.post("/api/v1/channel-accounts", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def smtp_body(server=None, **config) -> dict:
    config = {
        "host": "127.0.0.1",
        "port": server.port if server else free_port(),
        "username": "mc",
        "password": SMTP_PASSWORD,
        "from_email": "noreply@msgcenter.test",
        **config,
    }
    return {
        "channel": "email",
        "provider": "smtp",
        "name": "mail",
        "config": {k: v for k, v in config.items() if v is not None},
    }


WEBHOOK = {
    "channel": "webhook",
    "provider": "webhook",
    "name": "ops hook",
    "config": {"url": "http://127.0.0.1:9/hook", "secret": HOOK_SECRET, "timeout": 2},
    "weight": 3,
    "rate_limit_per_sec": 20,
    "enabled": True,
}


def test_create_answers_the_account_with_secrets_masked(api):
    body = create(api, WEBHOOK)
    assert isinstance(body["id"], str)
    assert {
        k: body[k]
        for k in (
            "channel",
            "provider",
            "name",
            "weight",
            "rate_limit_per_sec",
            "enabled",
            "sandbox",
        )
    } == {
        "channel": "webhook",
        "provider": "webhook",
        "name": "ops hook",
        "weight": 3,
        "rate_limit_per_sec": 20.0,
        "enabled": True,
        "sandbox": False,
    }
    assert body["config"] == {"url": "http://127.0.0.1:9/hook", "secret": MASK, "timeout": 2}
    assert ChannelAccount.objects.get(pk=body["id"]).config["secret"] == HOOK_SECRET


def test_secrets_never_appear_in_any_response(api, smtp_server):
    responses = []
    smtp = create(api, smtp_body(smtp_server))
    hook = create(api, WEBHOOK)
    robot = create(
        api,
        {
            "channel": "dingtalk",
            "provider": "dingtalk_robot",
            "name": "robot",
            "config": {
                "webhook_url": f"https://oapi.dingtalk.com/robot/send?access_token={ROBOT_TOKEN}",
                "secret": ROBOT_SECRET,
            },
        },
    )
    for account in (smtp, hook, robot):
        url = f"/api/v1/channel-accounts/{account['id']}"
        responses += [
            api.get(url),
            api.patch(url, {"name": "renamed"}, format="json"),
            api.patch(url, {"config": {**account["config"]}}, format="json"),
            api.post(f"{url}/test"),
        ]
    responses += [
        api.get("/api/v1/channel-accounts"),
        api.get("/api/v1/channel-accounts?channel=dingtalk"),
    ]
    assert all(r.status_code == 200 for r in responses), [r.content for r in responses]
    for response in responses:
        text = response.content.decode()
        for secret in (SMTP_PASSWORD, HOOK_SECRET, ROBOT_TOKEN, ROBOT_SECRET):
            assert secret not in text
    stored = ChannelAccount.objects.get(pk=robot["id"]).config
    assert stored["secret"] == ROBOT_SECRET and ROBOT_TOKEN in stored["webhook_url"]


def test_patch_keeps_secrets_sent_back_masked_or_left_out(api):
    body = create(api, WEBHOOK)
    url = f"/api/v1/channel-accounts/{body['id']}"

    masked = api.patch(
        url, {"config": {"url": "http://127.0.0.1:9/new", "secret": MASK}}, format="json"
    )
    assert masked.status_code == 200
    assert masked.json()["config"] == {"url": "http://127.0.0.1:9/new", "secret": MASK}
    assert ChannelAccount.objects.get(pk=body["id"]).config == {
        "url": "http://127.0.0.1:9/new",
        "secret": HOOK_SECRET,
    }

    left_out = api.patch(url, {"config": {"url": "http://127.0.0.1:9/other"}}, format="json")
    assert left_out.status_code == 200
    assert ChannelAccount.objects.get(pk=body["id"]).config["secret"] == HOOK_SECRET

    api.patch(url, {"enabled": False}, format="json")
    assert ChannelAccount.objects.get(pk=body["id"]).config["secret"] == HOOK_SECRET


def test_patch_can_replace_or_remove_a_secret(api):
    body = create(api, WEBHOOK)
    url = f"/api/v1/channel-accounts/{body['id']}"
    api.patch(url, {"config": {"url": "http://127.0.0.1:9/h", "secret": "new-one"}}, format="json")
    assert ChannelAccount.objects.get(pk=body["id"]).config["secret"] == "new-one"
    removed = api.patch(
        url, {"config": {"url": "http://127.0.0.1:9/h", "secret": None}}, format="json"
    )
    assert removed.json()["config"] == {"url": "http://127.0.0.1:9/h"}
    assert "secret" not in ChannelAccount.objects.get(pk=body["id"]).config


def test_the_mask_is_not_a_secret(api):
    response = api.post(
        "/api/v1/channel-accounts",
        {**WEBHOOK, "config": {"url": "http://127.0.0.1:9/", "secret": MASK}},
        format="json",
    )
    assert_error(response, 400, "invalid_request")
    assert not ChannelAccount.objects.exists()


@pytest.mark.parametrize(
    "overrides,where",
    [
        ({"channel": "pigeon"}, "channel"),
        ({"provider": "carrier_pigeon"}, "provider"),
        ({"provider": "smtp"}, "provider"),  # an email provider on the webhook channel
        ({"provider": 7}, "provider"),
        ({"config": {"secret": "x"}}, "config"),  # url is required
        ({"config": ["url"]}, "config"),
        ({"name": ""}, "name"),
        ({"weight": 0}, "weight"),
        ({"weight": "heavy"}, "weight"),
        ({"rate_limit_per_sec": 0}, "rate_limit_per_sec"),
        ({"enabled": "perhaps"}, "enabled"),
    ],
)
def test_bad_accounts_are_invalid_requests(api, overrides, where):
    response = api.post("/api/v1/channel-accounts", {**WEBHOOK, **overrides}, format="json")
    error = assert_error(response, 400, "invalid_request")
    assert where in str(error["details"])
    assert not ChannelAccount.objects.exists()


def test_missing_config_key_is_named(api):
    response = api.post(
        "/api/v1/channel-accounts", {**WEBHOOK, "config": {"secret": "x"}}, format="json"
    )
    error = assert_error(response, 400, "invalid_request")
    assert error["details"] == {"fields": {"config": {"url": "This key is required."}}}


def test_the_console_sandbox_serves_any_channel(api):
    body = create(api, {"channel": "sms", "provider": "console", "name": "sms sandbox"})
    assert (body["provider"], body["config"]) == ("console", {})


def test_patch_is_validated_against_the_resulting_account(api):
    body = create(api, WEBHOOK)
    url = f"/api/v1/channel-accounts/{body['id']}"
    assert_error(api.patch(url, {"provider": "smtp"}, format="json"), 400, "invalid_request")
    assert_error(api.patch(url, {"config": {"timeout": 3}}, format="json"), 400, "invalid_request")
    assert ChannelAccount.objects.get(pk=body["id"]).provider == "webhook"


def test_list_filters_by_channel(api):
    create(api, WEBHOOK)
    create(api, smtp_body())
    response = api.get("/api/v1/channel-accounts?channel=email")
    assert [a["provider"] for a in response.json()["results"]] == ["smtp"]
    assert response.json()["next"] is None
    assert len(api.get("/api/v1/channel-accounts").json()["results"]) == 2
    assert_error(api.get("/api/v1/channel-accounts?channel=pigeon"), 400, "invalid_request")


def test_delete_then_not_found(api):
    body = create(api, WEBHOOK)
    url = f"/api/v1/channel-accounts/{body['id']}"
    assert api.delete(url).status_code == 204
    for method in ("get", "patch", "delete"):
        assert_error(getattr(api, method)(url, {}, format="json"), 404, "not_found")
    assert_error(api.post(f"{url}/test"), 404, "not_found")
    assert_error(api.get("/api/v1/channel-accounts/not-a-number"), 404, "not_found")


def test_connection_test_against_a_real_smtp_server(api, smtp_server):
    # The loopback server offers no AUTH: connect without credentials.
    body = create(api, smtp_body(smtp_server, username=None, password=None))
    response = api.post(f"/api/v1/channel-accounts/{body['id']}/test")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "detail": f"connected to 127.0.0.1:{smtp_server.port}"}
    assert smtp_server.messages == []  # a check, not a send


def test_connection_test_reports_a_failure_without_failing(api):
    body = create(api, smtp_body(port=free_port(), timeout=2))
    response = api.post(f"/api/v1/channel-accounts/{body['id']}/test")
    assert response.status_code == 200
    result = response.json()
    assert result["ok"] is False
    assert "SMTP connection error" in result["detail"]


def test_needs_the_manage_scope(api_send_only):
    assert_error(api_send_only.get("/api/v1/channel-accounts"), 403, "forbidden")
    assert_error(
        api_send_only.post("/api/v1/channel-accounts", WEBHOOK, format="json"), 403, "forbidden"
    )


def test_a_last_error_that_echoes_a_secret_is_scrubbed(api):
    body = create(
        api,
        {
            "channel": "dingtalk",
            "provider": "dingtalk_robot",
            "name": "robot",
            "config": {
                "webhook_url": f"https://oapi.dingtalk.com/robot/send?access_token={ROBOT_TOKEN}"
            },
        },
    )
    ChannelAccount.objects.filter(pk=body["id"]).update(
        last_error=f"connection error calling https://oapi.dingtalk.com/robot/send"
        f"?access_token={ROBOT_TOKEN}"
    )
    shown = api.get(f"/api/v1/channel-accounts/{body['id']}").json()
    # The robot's whole webhook URL is a secret (it carries the token).
    assert shown["last_error"] == "connection error calling ********"
