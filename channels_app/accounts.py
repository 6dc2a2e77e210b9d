"""Business actions on channel accounts: create, edit (secrets are write-only: an edit
that leaves a secret out or sends its mask back keeps the stored one) and test.
Called by the API and usable from the admin."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from msgcenter.errors import InvalidRequest

from .channels import CHANNELS, TransportError, get_provider_class, providers_for
from .channels.base import Provider, mask_config
from .models import ChannelAccount

logger = logging.getLogger("msgcenter.channels")

MASK = "********"
ACCOUNT_FIELDS = (
    "channel",
    "provider",
    "name",
    "config",
    "weight",
    "rate_limit_per_sec",
    "enabled",
    "sandbox",
)


def secret_keys(provider_cls: type[Provider] | None, config: dict[str, Any]) -> set[str]:
    """The keys of `config` that are secrets, by the same rule that masks them."""
    probe = mask_config(provider_cls, {key: "x" for key in config})
    return {key for key, value in probe.items() if value == MASK}


def masked_config(account: ChannelAccount) -> dict[str, Any]:
    return mask_config(get_provider_class(account.provider), account.config)


def scrub(text: str, account: ChannelAccount) -> str:
    """`text` with every secret value of the account replaced by the mask (provider
    errors may echo a URL or a credential)."""
    config = account.config or {}
    for key in secret_keys(get_provider_class(account.provider), config):
        value = config.get(key)
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, MASK)
    return text


def merge_config(
    provider_cls: type[Provider] | None, stored: dict[str, Any], incoming: dict[str, Any]
) -> dict[str, Any]:
    """The config after an edit: `incoming` replaces `stored`, except that a stored secret
    which `incoming` leaves out or sends back masked is kept. `null` removes a key."""
    merged = dict(incoming)
    for key in secret_keys(provider_cls, stored):
        if key not in incoming or incoming[key] == MASK:
            merged[key] = stored[key]
    return {key: value for key, value in merged.items() if value is not None}


def check_account(*, channel: str, provider: str, config: dict[str, Any]) -> type[Provider]:
    """The provider class for this channel/provider/config, or InvalidRequest."""
    if channel not in CHANNELS:
        raise InvalidRequest(
            f"Unknown channel '{channel}'.",
            details={"field": "channel", "allowed": sorted(CHANNELS)},
        )
    provider_cls = get_provider_class(provider)
    if provider_cls is None or provider_cls.channel not in (channel, "*"):
        allowed = sorted(p.id for p in providers_for(channel))
        what = "Unknown provider" if provider_cls is None else "Provider"
        raise InvalidRequest(
            f"{what} '{provider}' cannot serve channel '{channel}'; use one of: "
            f"{', '.join(allowed)}.",
            details={"field": "provider", "allowed": allowed},
        )
    masked = sorted(key for key, value in config.items() if value == MASK)
    if masked:
        raise InvalidRequest(
            f"config.{masked[0]}: send the secret itself, not its mask.",
            details={"fields": {"config": {k: "masked value" for k in masked}}},
        )
    try:
        errors = provider_cls.validate_config(config)
    except (TypeError, ValueError, AttributeError) as exc:
        errors = {"config": f"unusable config: {exc}"}
    if errors:
        key, message = next(iter(errors.items()))
        raise InvalidRequest(f"config.{key}: {message}", details={"fields": {"config": errors}})
    return provider_cls


def create_channel_account(
    *, channel: str, provider: str, name: str, config: dict[str, Any] | None = None, **fields: Any
) -> ChannelAccount:
    config = {k: v for k, v in (config or {}).items() if v is not None}
    check_account(channel=channel, provider=provider, config=config)
    return ChannelAccount.objects.create(
        channel=channel,
        provider=provider,
        name=name,
        config=config,
        **{k: v for k, v in fields.items() if k in ACCOUNT_FIELDS},
    )


def update_channel_account(*, account: ChannelAccount, **fields: Any) -> ChannelAccount:
    with transaction.atomic():
        account = ChannelAccount.objects.select_for_update().get(pk=account.pk)
        channel = fields.get("channel", account.channel)
        provider = fields.get("provider", account.provider)
        config = account.config or {}
        if "config" in fields:
            config = merge_config(get_provider_class(provider), config, fields["config"] or {})
        check_account(channel=channel, provider=provider, config=config)
        for key, value in fields.items():
            if key in ACCOUNT_FIELDS:
                setattr(account, key, value)
        account.config = config
        account.save()
    return account


def run_connection_test(*, account: ChannelAccount) -> tuple[bool, str]:
    """Ask the provider to check credentials/reachability without sending."""
    provider_cls = get_provider_class(account.provider)
    if provider_cls is None:
        return False, f"unknown provider '{account.provider}'"
    provider = provider_cls(account.config, account_id=account.pk)
    try:
        ok, detail = True, provider.test_connection()
    except TransportError as exc:
        ok, detail = False, exc.message
    except Exception as exc:  # noqa: BLE001 - any failure is the answer to "does it work?"
        logger.warning("test of channel account %s failed", account.pk, exc_info=True)
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    finally:
        provider.close()
    return ok, scrub(str(detail), account)
