"""OpenAPI helpers: the Bearer scheme of our API keys and the shared error body.

Imported from an AppConfig.ready() so that drf-spectacular registers the extension."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "msgcenter.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer <key>` "
            "(create one with `manage.py create_api_key`).",
        }


ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)

_DESCRIPTIONS = {
    400: "invalid_request (malformed JSON, wrong types, unknown channel) or another 400 code",
    401: "unauthorized: no or bad API key",
    403: "forbidden: the key lacks the scope",
    404: "not found",
    409: "conflict with the current state",
    429: "rate_limited",
}


def error_responses(codes: dict[int, str] | None = None) -> dict[int, OpenApiResponse]:
    """Error responses in the API.md format for `extend_schema(responses=...)`: 401, 403
    and 429 always, plus `codes` (status -> the error codes it can carry)."""
    described = {**_DESCRIPTIONS, **(codes or {})}
    return {
        status: OpenApiResponse(ErrorSerializer, description=described[status])
        for status in sorted({401, 403, 429, *(codes or {})})
    }
