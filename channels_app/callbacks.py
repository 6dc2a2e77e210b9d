"""`POST /api/v1/callbacks/<account id>`: provider receipts, verified by the account's
adapter (401 when the signature fails, and nothing changes)."""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from msgcenter.errors import APIError, InvalidRequest, NotFound

from .channels import get_provider_class
from .models import ChannelAccount
from .receipts import apply_events


class CallbackView(APIView):
    required_scope = None  # providers authenticate by signature, not by API key
    authentication_classes: list = []
    throttle_classes: list = []
    parser_classes: list = []  # adapters read the raw request themselves

    @extend_schema(
        request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT}, tags=["callbacks"]
    )
    def post(self, request, account_id: str):
        account = None
        if account_id.isdigit():
            account = ChannelAccount.objects.filter(pk=int(account_id)).first()
        if account is None:
            raise NotFound(f"Channel account '{account_id}' does not exist.")
        cls = get_provider_class(account.provider)
        if cls is None:
            raise NotFound(f"Provider '{account.provider}' is not installed.")
        provider = cls(account.config, account_id=account.pk)
        try:
            events = provider.parse_callback(request._request)
        except PermissionError as exc:
            raise APIError(
                f"Callback signature check failed: {exc}", code="unauthorized", status_code=401
            )
        except NotImplementedError:
            raise NotFound(f"Provider '{account.provider}' takes no callbacks.")
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidRequest(f"Callback body not understood: {exc}")
        result = apply_events(account=account, events=events)
        ack = getattr(provider, "callback_ack", None)
        if ack:
            # The body the provider expects back; anything else makes it resend.
            content_type, body = ack
            response = HttpResponse(body, content_type=content_type)
            response["X-Msgcenter-Matched"] = str(result["matched"])
            return response
        return Response(result)


urlpatterns = [
    path("callbacks/<str:account_id>", CallbackView.as_view(), name="provider-callback"),
]
