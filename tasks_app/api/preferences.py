"""A recipient's opt-outs (scope `send`): GET and PUT (replace) the list."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_app.serializers import ChannelField
from msgcenter.errors import InvalidRequest
from msgcenter.schema import error_responses
from tasks_app import preferences, services
from templates_app.serializers import CategoryField

MAX_OPT_OUTS = 200


class OptOutSerializer(serializers.Serializer):
    category = CategoryField(
        required=False,
        allow_blank=True,
        help_text="Template category; empty or left out: every category.",
    )
    channel = ChannelField(
        required=False, allow_blank=True, help_text="Channel; empty or left out: every channel."
    )
    updated_at = serializers.DateTimeField(read_only=True)

    def validate(self, attrs):
        if attrs.get("category") in preferences.TRANSACTIONAL:
            raise serializers.ValidationError(
                {"category": "Verification messages cannot be opted out of."}
            )
        return attrs


class PreferencesSerializer(serializers.Serializer):
    opt_outs = OptOutSerializer(many=True, max_length=MAX_OPT_OUTS)


def _body(recipient) -> dict:
    return {"recipient": recipient.external_id, "opt_outs": preferences.opt_outs(recipient)}


@extend_schema(tags=["recipients"])
class PreferencesView(APIView):
    required_scope = "send"

    @extend_schema(responses={200: PreferencesSerializer, **error_responses({404: "not_found"})})
    def get(self, request: Request, external_id: str) -> Response:
        return Response(_body(services.get_recipient(external_id)))

    @extend_schema(
        request=PreferencesSerializer,
        description='Replace the opt-outs: `{"opt_outs": [{"category": "marketing"}, '
        '{"channel": "sms"}, {"category": "notification", "channel": "email"}]}`. '
        "Verification messages ignore opt-outs.",
        responses={
            200: PreferencesSerializer,
            **error_responses({400: "invalid_request", 404: "not_found"}),
        },
    )
    def put(self, request: Request, external_id: str) -> Response:
        recipient = services.get_recipient(external_id)
        if not isinstance(request.data, dict):
            raise InvalidRequest("The body must be a JSON object with 'opt_outs'.")
        serializer = PreferencesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        preferences.set_opt_outs(recipient=recipient, items=serializer.validated_data["opt_outs"])
        return Response(_body(recipient))


urlpatterns = [
    path(
        "recipients/<str:external_id>/preferences",
        PreferencesView.as_view(),
        name="recipient-preferences",
    ),
]
