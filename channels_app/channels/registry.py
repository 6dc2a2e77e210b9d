"""Channel kinds and provider adapters. Every module in this package registers its
providers with `@register`; `load_all()` imports them all once."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any

from .base import Provider

PROVIDERS: dict[str, type[Provider]] = {}
_loaded = False


@dataclass(frozen=True)
class ChannelKind:
    kind: str
    label: str
    queue: str
    # Where the address of a recipient comes from: a Recipient field, or addresses[<key>].
    address_field: str = ""
    address_key: str = ""
    # Group channels post once per task; the default when no account says otherwise.
    group: bool = False
    max_attempts: int = 5
    # The provider used when the channel has no enabled account.
    default_provider: str = "console"
    # Deliveries per queued chunk (0: MSGCENTER_SEND_CHUNK). In-app sends are database
    # writes only, so their chunks are large.
    chunk_size: int = 0

    def address_for(self, recipient: Any) -> str:
        """The address of `recipient` (a Recipient or a dict) on this channel, or ''."""
        get = (
            recipient.get
            if isinstance(recipient, dict)
            else (lambda name, default="": getattr(recipient, name, default))
        )
        if self.address_field:
            value = get(self.address_field, "") or ""
            if value:
                return str(value)
        if self.address_key:
            addresses = get("addresses", None) or {}
            return str(addresses.get(self.address_key, "") or "")
        return ""


CHANNELS: dict[str, ChannelKind] = {
    c.kind: c
    for c in (
        ChannelKind(
            "inapp",
            "In-app inbox",
            "send_inapp",
            address_field="external_id",
            max_attempts=3,
            default_provider="inapp",
            chunk_size=1000,
        ),
        ChannelKind("email", "Email", "send_email", address_field="email"),
        ChannelKind("sms", "SMS", "send_sms", address_field="phone"),
        ChannelKind("dingtalk", "DingTalk", "send_im", address_key="dingtalk", group=True),
        ChannelKind("wecom", "WeCom", "send_im", address_key="wecom", group=True),
        ChannelKind("feishu", "Feishu", "send_im", address_key="feishu", group=True),
        ChannelKind("wechat_mp", "WeChat official account", "send_im", address_key="wechat_mp"),
        ChannelKind("slack", "Slack", "send_im", address_key="slack", group=True),
        ChannelKind("webhook", "Webhook", "send_webhook", group=True),
        ChannelKind("apprise", "Apprise", "send_webhook", group=True),
    )
}


def register(cls: type[Provider]) -> type[Provider]:
    if not cls.id:
        raise ValueError(f"{cls.__name__} has no id")
    PROVIDERS[cls.id] = cls
    return cls


def load_all() -> None:
    global _loaded
    if _loaded:
        return
    from . import __name__ as package_name
    from . import __path__ as package_path

    for module in pkgutil.iter_modules(package_path):
        if module.name not in {"base", "registry"} and not module.name.startswith("_"):
            importlib.import_module(f"{package_name}.{module.name}")
    _loaded = True


def get_provider_class(provider_id: str) -> type[Provider] | None:
    load_all()
    return PROVIDERS.get(provider_id)


def providers_for(channel: str) -> list[type[Provider]]:
    load_all()
    return [p for p in PROVIDERS.values() if p.channel == channel or p.channel == "*"]


def get_channel(kind: str) -> ChannelKind | None:
    return CHANNELS.get(kind)
