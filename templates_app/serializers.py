"""Input validation and output shapes of the templates API (API.md, "Templates")."""

from __future__ import annotations

from typing import Any

from django.core.validators import validate_slug
from rest_framework import serializers

from channels_app.models import ChannelAccount
from channels_app.serializers import ChannelField
from msgcenter.fields import StrictCharField

from .models import Category, MessageTemplate, TemplateStatus


class CategoryField(serializers.ChoiceField):
    """A template category; one enum in the OpenAPI schema (ENUM_NAME_OVERRIDES)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Category.choices, **kwargs)


class AccountIdField(serializers.PrimaryKeyRelatedField):
    """A channel account given and shown by id; ids are strings in responses."""

    def to_representation(self, value) -> str:
        return str(value.pk)


class JSONObjectField(serializers.DictField):
    """Any JSON object (values unchecked here: a schema or params checks them later)."""


def _text(**kwargs: Any) -> StrictCharField:
    # Template sources keep their whitespace: it can be meaningful (plain-text bodies).
    return StrictCharField(
        required=False, allow_blank=True, default="", trim_whitespace=False, **kwargs
    )


class ContentSerializer(serializers.Serializer):
    channel = ChannelField()
    locale = StrictCharField(required=False, allow_blank=True, default="", max_length=20)
    subject = _text()
    body = _text()
    body_html = _text()
    extra = JSONObjectField(required=False, default=dict)
    account = AccountIdField(
        queryset=ChannelAccount.objects.all(), required=False, allow_null=True, default=None
    )
    fallback_channel = ChannelField(required=False, allow_blank=True, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        account = attrs.pop("account", None)
        if account is not None and account.channel != attrs["channel"]:
            raise serializers.ValidationError(
                {
                    "account": f"Account {account.pk} is a '{account.channel}' account, "
                    f"not '{attrs['channel']}'."
                }
            )
        if attrs.get("fallback_channel") == attrs["channel"]:
            raise serializers.ValidationError(
                {"fallback_channel": "The fallback must be another channel."}
            )
        attrs["account_id"] = account.pk if account else None
        return attrs


class TemplateSerializer(serializers.Serializer):
    """A template with its draft contents. `status` and `version` (the latest published
    version number, null before the first publish) are read-only."""

    code = StrictCharField(
        max_length=100,
        validators=[validate_slug],
        help_text="The slug callers use: letters, digits, _ and -.",
    )
    name = StrictCharField(max_length=200)
    category = CategoryField(required=False)
    description = StrictCharField(required=False, allow_blank=True)
    params_schema = JSONObjectField(required=False)
    sample_params = JSONObjectField(required=False)
    dedup_window_seconds = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    daily_cap = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    remind_after_seconds = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    remind_channel = ChannelField(required=False, allow_blank=True)
    contents = ContentSerializer(many=True, required=False, default=list)
    status = serializers.ChoiceField(choices=TemplateStatus.choices, read_only=True)
    version = serializers.IntegerField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def validate_code(self, value: str) -> str:
        if self.instance is not None and value != self.instance.code:
            raise serializers.ValidationError("The code of a template cannot change.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("remind_after_seconds") and not self._final("remind_channel", attrs):
            raise serializers.ValidationError(
                {"remind_channel": "A read reminder needs the channel to remind through."}
            )
        return attrs

    def _final(self, name: str, attrs: dict[str, Any]) -> Any:
        """The value a field will have after this write (PATCH keeps what it leaves out)."""
        if name in attrs:
            return attrs[name]
        return getattr(self.instance, name, None)

    def to_representation(self, instance: MessageTemplate) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["contents"] = ContentSerializer(instance.contents.all(), many=True).data
        return data


class PublishResultSerializer(serializers.Serializer):
    code = serializers.CharField()
    status = serializers.ChoiceField(choices=TemplateStatus.choices)
    version = serializers.IntegerField()
    published_at = serializers.DateTimeField()


class PreviewSerializer(serializers.Serializer):
    params = JSONObjectField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Params to render with; default: the sample params.",
    )
    channel = ChannelField(required=False, allow_blank=True, default="")
    locale = StrictCharField(required=False, allow_blank=True, default="", max_length=20)


class PreviewResultSerializer(serializers.Serializer):
    channel = serializers.CharField()
    subject = serializers.CharField()
    body = serializers.CharField()
    body_html = serializers.CharField()
    extra = serializers.DictField()
