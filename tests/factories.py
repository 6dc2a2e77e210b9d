"""Building blocks for tests: published templates, recipients, accounts — through the
same services the API uses."""

from __future__ import annotations

from typing import Any

from channels_app.models import ChannelAccount
from tasks_app.services import upsert_recipient
from templates_app.services import create_template, publish_template

ORDER_SCHEMA = {
    "type": "object",
    "required": ["order_no"],
    "properties": {"order_no": {"type": "string"}, "carrier": {"type": "string"}},
}


def published_template(
    code: str = "order_shipped",
    *,
    channels=("inapp", "email", "webhook"),
    category: str = "notification",
    schema: dict | None = None,
    **fields: Any,
):
    contents = []
    for channel in channels:
        content = {
            "channel": channel,
            "subject": "Order {{ order_no }} shipped",
            "body": "Hi {{ recipient.name }}, your order {{ order_no }} is on its way.",
        }
        if channel == "email":
            content["body_html"] = "<p>Your order <b>{{ order_no }}</b> is on its way.</p>"
        contents.append(content)
    template = create_template(
        code=code,
        name=code.replace("_", " ").title(),
        category=category,
        params_schema=ORDER_SCHEMA if schema is None else schema,
        contents=contents,
        **fields,
    )
    publish_template(template=template, by="tests")
    template.refresh_from_db()
    return template


def recipients(n: int = 3, prefix: str = "u-", **fields: Any):
    out = []
    for i in range(1, n + 1):
        r, _ = upsert_recipient(
            external_id=f"{prefix}{1000 + i}",
            name=f"User {i}",
            email=f"user{i}@example.com",
            phone=f"+86138000000{i:02d}",
            timezone="Asia/Shanghai",
            **fields,
        )
        out.append(r)
    return out


def smtp_account(server, **config: Any) -> ChannelAccount:
    return ChannelAccount.objects.create(
        channel="email",
        provider="smtp",
        name="loopback smtp",
        config={
            "host": server.host,
            "port": server.port,
            "from_email": "noreply@msgcenter.test",
            **config,
        },
    )


def webhook_account(
    server, secret: str = "s3cret", path: str = "/hook", **kw: Any
) -> ChannelAccount:
    return ChannelAccount.objects.create(
        channel="webhook",
        provider="webhook",
        name=kw.pop("name", "loopback webhook"),
        config={"url": server.url + path, "secret": secret, "timeout": 2},
        **kw,
    )
