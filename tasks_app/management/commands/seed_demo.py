"""Seed a demo: an admin, an API key, two published templates and three recipients.

Idempotent: a second run creates nothing and prints the same credentials, which the
first run stored in <var>/demo-credentials.txt (the raw API key is not in the database).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from tasks_app.models import ApiClient, ApiKey, Recipient
from tasks_app.services import create_api_key, upsert_recipient
from templates_app.models import MessageTemplate, TemplateStatus
from templates_app.services import create_template, publish_template

ADMIN_USERNAME = "admin"
API_CLIENT = "demo"
CREDENTIALS_FILE = "demo-credentials.txt"

TEMPLATES: list[dict[str, Any]] = [
    {
        "code": "order_shipped",
        "name": "Order shipped",
        "category": "notification",
        "description": "Sent by the order service when a parcel leaves the warehouse.",
        "params_schema": {
            "type": "object",
            "required": ["order_no"],
            "properties": {
                "order_no": {"type": "string", "minLength": 1},
                "carrier": {"type": "string"},
                "tracking_no": {"type": "string"},
            },
        },
        "sample_params": {
            "order_no": "A123",
            "carrier": "SF Express",
            "tracking_no": "SF1234567890",
        },
        "contents": [
            {
                "channel": "inapp",
                "subject": "Order {{ order_no }} shipped",
                "body": "Your order {{ order_no }} is on its way with "
                "{{ carrier | default('our courier') }}.",
            },
            {
                "channel": "email",
                "subject": "Your order {{ order_no }} has shipped",
                "body": "Hello,\n\nyour order {{ order_no }} is on its way with "
                "{{ carrier | default('our courier') }}."
                "{% if tracking_no is defined %}\nTracking number: {{ tracking_no }}"
                "{% endif %}\n",
                "body_html": "<p>Hello,</p><p>your order <b>{{ order_no }}</b> is on its way "
                "with {{ carrier | default('our courier') }}.</p>"
                "{% if tracking_no is defined %}<p>Tracking number: "
                "{{ tracking_no }}</p>{% endif %}",
            },
        ],
    },
    {
        "code": "security_alert",
        "name": "Security alert",
        "category": "alert",
        "description": "Raised by the account service on a suspicious sign-in.",
        "params_schema": {
            "type": "object",
            "required": ["event", "ip"],
            "properties": {
                "event": {"type": "string", "minLength": 1},
                "ip": {"type": "string"},
            },
        },
        "sample_params": {"event": "New sign-in", "ip": "203.0.113.7"},
        "contents": [
            {
                "channel": "inapp",
                "subject": "Security alert: {{ event }}",
                "body": "{{ event }} from {{ ip }}. If this was not you, change your password.",
            },
            {
                "channel": "webhook",
                "subject": "[security] {{ event }}",
                "body": "{{ event }} from {{ ip }}.",
            },
        ],
    },
]

RECIPIENTS: list[dict[str, Any]] = [
    {
        "external_id": "u-1001",
        "name": "Li Lei",
        "email": "lilei@example.com",
        "locale": "zh-CN",
        "timezone": "Asia/Shanghai",
    },
    {
        "external_id": "u-1002",
        "name": "Han Meimei",
        "email": "hanmeimei@example.com",
        "locale": "zh-CN",
        "timezone": "Asia/Shanghai",
    },
    {
        "external_id": "u-1003",
        "name": "Jim Green",
        "email": "jim@example.com",
        "locale": "en",
        "timezone": "Europe/London",
    },
]


def credentials_path() -> Path:
    return Path(settings.VAR_DIR) / CREDENTIALS_FILE


def read_credentials() -> dict[str, str]:
    """The stored demo credentials as a dict ({} when there are none)."""
    path = credentials_path()
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip()
    return values


def write_credentials(values: dict[str, str]) -> None:
    path = credentials_path()
    lines = ["# msgcenter demo credentials, written by `manage.py seed_demo`."]
    lines += [f"{key}={value}" for key, value in values.items() if value]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


class Command(BaseCommand):
    help = (
        "Create demo data (admin user, API key, templates, recipients). Safe to run "
        "again; prints the admin password and the API key."
    )

    def handle(self, *args, **options) -> None:
        stored = read_credentials()
        with transaction.atomic():
            password, admin_note = self._admin(stored)
            api_key, key_note = self._api_key(stored)
            templates = self._templates()
            recipients = self._recipients()
        values = {
            "DEMO_ADMIN_USER": ADMIN_USERNAME,
            "DEMO_ADMIN_PASSWORD": password,
            "DEMO_API_KEY": api_key,
        }
        if stored != {k: v for k, v in values.items() if v}:
            write_credentials(values)

        out = self.stdout.write
        out(self.style.SUCCESS("Demo data ready."))
        out(f"  Admin user:  {ADMIN_USERNAME}")
        out(f"  Password:    {password or admin_note}")
        out(f"  API key:     {api_key or key_note}  (client '{API_CLIENT}', scopes send, manage)")
        out(f"  Templates:   {', '.join(templates)}")
        out(f"  Recipients:  {', '.join(recipients)}")
        out(f"  Saved in:    {credentials_path()}")

    def _admin(self, stored: dict[str, str]) -> tuple[str, str]:
        """Returns (password or '', note). Never overwrites a password an operator chose,
        unless DEMO_ADMIN_PASSWORD asks for it explicitly."""
        User = get_user_model()
        wanted = os.environ.get("DEMO_ADMIN_PASSWORD", "")
        user = User.objects.filter(username=ADMIN_USERNAME).first()
        if user is None:
            password = wanted or stored.get("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            User.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", password)
            return password, ""
        if wanted:
            if not user.check_password(wanted):
                user.set_password(wanted)
                user.save(update_fields=["password"])
            return wanted, ""
        known = stored.get("DEMO_ADMIN_PASSWORD", "")
        if known and user.check_password(known):
            return known, ""
        return "", "(unchanged: set by an operator; DEMO_ADMIN_PASSWORD=... resets it)"

    def _api_key(self, stored: dict[str, str]) -> tuple[str, str]:
        known = stored.get("DEMO_API_KEY", "")
        if (
            known
            and ApiKey.objects.filter(
                key_hash=ApiKey.hash(known),
                revoked=False,
                client__name=API_CLIENT,
                client__is_active=True,
            ).exists()
        ):
            return known, ""
        client = ApiClient.objects.filter(name=API_CLIENT).first()
        if client is not None and not client.is_active:
            return "", f"(client '{API_CLIENT}' is disabled)"
        scopes = client.scopes if client is not None else ["send", "manage"]
        _, raw = create_api_key(client_name=API_CLIENT, scopes=scopes)
        return raw, ""

    def _templates(self) -> list[str]:
        existing = {
            t.code: t
            for t in MessageTemplate.objects.filter(code__in=[spec["code"] for spec in TEMPLATES])
        }
        shown = []
        for spec in TEMPLATES:
            template = existing.get(spec["code"])
            if template is None:
                fields = {k: v for k, v in spec.items() if k not in ("code", "name", "contents")}
                template = create_template(
                    code=spec["code"], name=spec["name"], contents=spec["contents"], **fields
                )
            # Publish a demo template that has never been published; leave edited ones be.
            if template.status == TemplateStatus.DRAFT and not template.version:
                publish_template(template=template, by="seed_demo")
                template.refresh_from_db()
            shown.append(f"{template.code} (v{template.version or '-'}, {template.status})")
        return shown

    def _recipients(self) -> list[str]:
        existing = set(
            Recipient.objects.filter(
                external_id__in=[r["external_id"] for r in RECIPIENTS]
            ).values_list("external_id", flat=True)
        )
        for spec in RECIPIENTS:
            if spec["external_id"] not in existing:
                upsert_recipient(**spec)
        return [r["external_id"] for r in RECIPIENTS]
