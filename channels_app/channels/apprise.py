"""Apprise: any of the 100+ services Apprise speaks, given as Apprise URLs
(`tgram://...`, `discord://...`, `json://host/path`, several separated by spaces or
commas). One post per task, like the other group channels."""

from __future__ import annotations

import apprise as apprise_lib

from ._common import require
from .base import ConfigError, OutboundMessage, Provider, SendResult, TransportError
from .registry import register

BODY_FORMATS = {
    "text": apprise_lib.NotifyFormat.TEXT,
    "markdown": apprise_lib.NotifyFormat.MARKDOWN,
    "html": apprise_lib.NotifyFormat.HTML,
}
NOTIFY_TYPES = {"info", "success", "warning", "failure"}


@register
class AppriseProvider(Provider):
    id = "apprise"
    channel = "apprise"
    group = True
    label = "Apprise (any Apprise URL)"
    config_keys = ("url",)
    required_keys = ("url",)
    secret_keys = ("url",)  # Apprise URLs embed tokens and passwords

    @classmethod
    def validate_config(cls, config):
        errors = super().validate_config(config)
        if not errors and not cls._build(str(config["url"]))[1]:
            errors["url"] = "Apprise does not understand this URL."
        return errors

    @staticmethod
    def _build(urls: str) -> tuple[apprise_lib.Apprise, bool]:
        # In-memory state only: no files written under the worker's home directory.
        asset = apprise_lib.AppriseAsset(storage_mode="memory")
        notifier = apprise_lib.Apprise(asset=asset)
        accepted = notifier.add(urls)
        return notifier, accepted and len(notifier) > 0

    def _notifier(self) -> apprise_lib.Apprise:
        (urls,) = require(self, "url")
        notifier, accepted = self._build(urls)
        if not accepted:
            raise ConfigError("Apprise does not understand one of the account's URLs")
        return notifier

    def send(self, message: OutboundMessage) -> SendResult:
        notifier = self._notifier()
        extra = message.extra or {}
        kwargs = {}
        if extra.get("body_format") in BODY_FORMATS:
            kwargs["body_format"] = BODY_FORMATS[extra["body_format"]]
        if extra.get("notify_type") in NOTIFY_TYPES:
            kwargs["notify_type"] = extra["notify_type"]
        body = message.body or message.subject
        if not notifier.notify(title=message.subject, body=body, **kwargs):
            # Apprise reports only "some service failed": treat it as worth a retry.
            raise TransportError("Apprise could not notify every service")
        return SendResult(message.delivery_id, ok=True)

    def test_connection(self) -> str:
        notifier = self._notifier()
        services = ", ".join(service.url(privacy=True) for service in notifier)
        return f"{len(notifier)} service(s): {services}; nothing was sent"
