"""The API error format: {"error": {"code", "message", "details"}} (API.md)."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class APIError(exceptions.APIException):
    """A business error with its contract code. Raised by services and views."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        if status_code is not None:
            self.status_code = status_code
        self.message = message
        self.details = details or {}


class InvalidRequest(APIError):
    default_code = "invalid_request"


class InvalidParams(APIError):
    default_code = "invalid_params"


class NotFound(APIError):
    status_code = 404
    default_code = "not_found"


class Conflict(APIError):
    status_code = 409
    default_code = "invalid_transition"


def error_body(code: str, message: str, details: dict | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            text = _flatten(value)
            return text if key == "non_field_errors" else f"{key}: {text}"
        return "Invalid request."
    if isinstance(detail, list) and detail:
        return _flatten(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, APIError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, Http404):
        return Response(error_body("not_found", str(exc) or "Not found."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid_request", _flatten(exc.detail), {"fields": exc.detail})
    elif isinstance(exc, exceptions.ParseError):
        body = error_body("invalid_request", f"Malformed JSON: {exc.detail}")
    elif isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        response.status_code = 401
        body = error_body("unauthorized", str(exc.detail))
    elif isinstance(exc, exceptions.PermissionDenied):
        body = error_body("forbidden", str(exc.detail))
    elif isinstance(exc, exceptions.NotFound):
        body = error_body("not_found", str(exc.detail))
    elif isinstance(exc, exceptions.Throttled):
        body = error_body("rate_limited", "Too many requests.", {"retry_after": exc.wait})
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        body = error_body("invalid_request", str(exc.detail))
    elif isinstance(exc, exceptions.MethodNotAllowed):
        body = error_body("method_not_allowed", str(exc.detail))
    else:
        body = error_body(getattr(exc, "default_code", "error"), str(getattr(exc, "detail", exc)))
    response.data = body
    return response


def handler404(request, exception=None):
    """Unknown URLs under /api/ answer in the error format; elsewhere Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("not_found", f"No API endpoint at {request.path}."), status=404
        )
    return page_not_found(request, exception)
