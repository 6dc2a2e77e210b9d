"""Which account (and so which provider) sends a delivery: a pinned account, else the
enabled accounts of the channel in weighted-random order, circuit-open ones last; the
console sandbox when a channel has no enabled account."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from .channels import get_channel, get_provider_class
from .channels.base import Provider
from .models import ChannelAccount

CIRCUIT_THRESHOLD = 5
CIRCUIT_COOLDOWN = timedelta(seconds=60)


@dataclass
class Route:
    """A provider ready to send, and the account it belongs to (None: console)."""

    account: ChannelAccount | None
    provider: Provider

    @property
    def provider_id(self) -> str:
        return self.provider.id

    @property
    def account_id(self) -> int | None:
        return self.account.pk if self.account else None


def _provider_for(account: ChannelAccount | None, channel: str = "") -> Provider:
    if account is None:
        kind = get_channel(channel)
        cls = get_provider_class(kind.default_provider if kind else "console")
    elif account.sandbox:
        cls = get_provider_class("console")
    else:
        cls = get_provider_class(account.provider) or get_provider_class("console")
    return cls(account.config if account else {}, account_id=account.pk if account else None)


def weighted_order(
    accounts: list[ChannelAccount], rng: random.Random | None = None
) -> list[ChannelAccount]:
    """Accounts in a random order where the chance to come first follows `weight`."""
    rng = rng or random
    pool = [a for a in accounts if a.weight > 0]
    ordered = []
    while pool:
        total = sum(a.weight for a in pool)
        pick = rng.uniform(0, total)
        acc = 0.0
        for i, a in enumerate(pool):
            acc += a.weight
            if pick <= acc:
                ordered.append(pool.pop(i))
                break
        else:
            ordered.append(pool.pop())
    return ordered


def enabled_accounts(channel: str) -> list[ChannelAccount]:
    return list(ChannelAccount.objects.filter(channel=channel, enabled=True).order_by("id"))


def routes_for(
    channel: str, pinned_account_id: int | None = None, group: bool | None = None
) -> list[Route]:
    """Routes to try in order for a chunk on `channel` (failover goes down the list)."""
    if pinned_account_id:
        account = ChannelAccount.objects.filter(pk=pinned_account_id).first()
        if account is not None and account.enabled:
            return [Route(account, _provider_for(account))]
    accounts = enabled_accounts(channel)
    if group is not None:
        accounts = [a for a in accounts if _is_group(a) == group] or accounts
    if not accounts:
        return [Route(None, _provider_for(None, channel))]
    now = timezone.now()
    closed = [a for a in accounts if not (a.paused_until and a.paused_until > now)]
    opened = [a for a in accounts if a.paused_until and a.paused_until > now]
    ordered = weighted_order(closed) + sorted(opened, key=lambda a: a.paused_until)
    return [Route(a, _provider_for(a)) for a in ordered]


def _is_group(account: ChannelAccount) -> bool:
    cls = get_provider_class(account.provider)
    if cls is None or cls.channel == "*":
        kind = get_channel(account.channel)
        return bool(kind and kind.group)
    return cls.group


def is_group_channel(channel: str, pinned_account_id: int | None = None) -> bool:
    """Whether deliveries on `channel` post once per task into a group (DESIGN §8)."""
    kind = get_channel(channel)
    if kind is not None and kind.default_provider == channel:
        return False  # in-app: always one inbox item per person, whatever the accounts
    if pinned_account_id:
        account = ChannelAccount.objects.filter(pk=pinned_account_id).first()
        if account is not None:
            return _is_group(account)
    accounts = enabled_accounts(channel)
    if accounts:
        return _is_group(max(accounts, key=lambda a: (a.weight, -a.pk)))
    kind = get_channel(channel)
    return bool(kind and kind.group)


def record_success(account: ChannelAccount | None) -> None:
    if account is not None and (account.consecutive_failures or account.paused_until):
        ChannelAccount.objects.filter(pk=account.pk).update(
            consecutive_failures=0, paused_until=None
        )


def record_failure(account: ChannelAccount | None, error: str) -> None:
    """A transient failure of a whole attempt: after CIRCUIT_THRESHOLD in a row the
    account is paused for CIRCUIT_COOLDOWN (its routes go last meanwhile)."""
    if account is None:
        return
    ChannelAccount.objects.filter(pk=account.pk).update(
        consecutive_failures=F("consecutive_failures") + 1, last_error=error[:1000]
    )
    account.refresh_from_db(fields=["consecutive_failures"])
    if account.consecutive_failures >= CIRCUIT_THRESHOLD:
        ChannelAccount.objects.filter(pk=account.pk).update(
            paused_until=timezone.now() + CIRCUIT_COOLDOWN
        )
