"""Input validation and output shapes of the channel-accounts API. Secrets in `config`
are write-only: responses show them masked."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from msgcenter.fields import StrictCharField

from .accounts import masked_config, scrub
from .channels import CHANNELS
from .models import ChannelAccount

CHANNEL_KINDS = sorted(CHANNELS)


class ChannelField(serializers.ChoiceField):
    """A channel kind (`email`, `inapp`, ...); one enum in the OpenAPI schema
    (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"])."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=CHANNEL_KINDS, **kwargs)


class ChannelAccountSerializer(serializers.ModelSerializer):
    id = serializers.CharField(read_only=True)
    channel = ChannelField()
    provider = StrictCharField(max_length=40)
    name = StrictCharField(max_length=200)
    config = serializers.DictField(
        required=False,
        help_text="Provider settings. Secrets are write-only: responses mask them, and an "
        'edit that leaves a secret out or sends "********" back keeps the stored one.',
    )
    weight = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
    rate_limit_per_sec = serializers.FloatField(
        required=False, allow_null=True, help_text="Sends per second; null: unlimited."
    )
    enabled = serializers.BooleanField(required=False)
    sandbox = serializers.BooleanField(required=False)

    class Meta:
        model = ChannelAccount
        fields = [
            "id",
            "channel",
            "provider",
            "name",
            "config",
            "weight",
            "rate_limit_per_sec",
            "enabled",
            "sandbox",
            "consecutive_failures",
            "paused_until",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "consecutive_failures",
            "paused_until",
            "last_error",
            "created_at",
            "updated_at",
        ]

    def validate_rate_limit_per_sec(self, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise serializers.ValidationError("Must be above 0 (or null for no limit).")
        return value

    def to_representation(self, instance: ChannelAccount) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["config"] = masked_config(instance)
        data["last_error"] = scrub(instance.last_error or "", instance)
        return data


class ConnectionTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()
