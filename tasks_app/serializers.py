"""Input validation and output shapes of the recipients and quiet-hours API.
(Message serializers live beside their views in tasks_app/api/messages.py.)"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from channels_app.serializers import ChannelField
from msgcenter.fields import ClockTimeField, StrictCharField, TimezoneField
from templates_app.serializers import CategoryField

from .models import QuietAction, QuietHours

MAX_TAGS = 100


class RecipientSerializer(serializers.Serializer):
    """A recipient's fields. On a write every field is optional and a field left out
    keeps its stored value (an upsert merges); send "" to clear one."""

    external_id = serializers.CharField(read_only=True)
    name = StrictCharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=320, required=False, allow_blank=True)
    phone = StrictCharField(max_length=40, required=False, allow_blank=True)
    locale = StrictCharField(max_length=20, required=False, allow_blank=True)
    timezone = TimezoneField(required=False, allow_blank=True)
    addresses = serializers.DictField(
        child=StrictCharField(max_length=320, allow_blank=True),
        required=False,
        help_text='Per-channel addresses, e.g. {"dingtalk": "...", "wechat_mp": "openid..."}.',
    )
    tags = serializers.ListField(
        child=StrictCharField(max_length=100), required=False, max_length=MAX_TAGS
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def validate_email(self, value: str) -> str:
        return value.strip()

    def validate_addresses(self, value: dict[str, str]) -> dict[str, str]:
        too_long = [key for key in value if len(key) > 50]
        if too_long:
            raise serializers.ValidationError(f"Address keys are channel names: {too_long[0]!r}.")
        return value


class QuietHoursSerializer(serializers.ModelSerializer):
    """A quiet-hours policy. The window may cross midnight (22:00-08:00); `timezone` is
    the fallback for recipients without one."""

    id = serializers.CharField(read_only=True)
    name = StrictCharField(max_length=100)
    start = ClockTimeField(help_text="HH:MM")
    end = ClockTimeField(help_text="HH:MM")
    timezone = TimezoneField(required=False, allow_blank=True)
    categories = serializers.ListField(
        child=CategoryField(),
        required=False,
        help_text="Template categories the policy applies to.",
    )
    channels = serializers.ListField(
        child=ChannelField(),
        required=False,
        help_text="Channels the policy applies to (empty: all).",
    )
    action = serializers.ChoiceField(choices=QuietAction.choices, required=False)
    enabled = serializers.BooleanField(required=False)

    class Meta:
        model = QuietHours
        fields = [
            "id",
            "name",
            "start",
            "end",
            "timezone",
            "categories",
            "channels",
            "action",
            "enabled",
            "created_at",
        ]
        read_only_fields = ["created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start = attrs.get("start", getattr(self.instance, "start", None))
        end = attrs.get("end", getattr(self.instance, "end", None))
        if start is not None and start == end:
            raise serializers.ValidationError(
                {"end": "The window cannot be empty: end equals start."}
            )
        for name in ("categories", "channels"):
            if name in attrs:
                attrs[name] = list(dict.fromkeys(attrs[name]))  # drop repeats, keep order
        return attrs
