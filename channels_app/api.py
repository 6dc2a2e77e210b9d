"""Channels API: channel accounts (scope `manage`) and, below them, provider callbacks."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from msgcenter.errors import InvalidRequest, NotFound
from msgcenter.fields import parse_id
from msgcenter.pagination import CursorPage
from msgcenter.schema import error_responses

from . import accounts
from .channels import CHANNELS
from .models import ChannelAccount
from .serializers import ChannelAccountSerializer, ConnectionTestSerializer

# --- channel accounts ----------------------------------------------------------------


@extend_schema(tags=["channel accounts"])
class ChannelAccountView(generics.GenericAPIView):
    required_scope = "manage"
    serializer_class = ChannelAccountSerializer
    queryset = ChannelAccount.objects.all()

    def get_object(self) -> ChannelAccount:
        pk = self.kwargs["pk"]
        account_id = parse_id(pk)
        account = (
            None if account_id is None else ChannelAccount.objects.filter(pk=account_id).first()
        )
        if account is None:
            raise NotFound(f"Channel account '{pk}' does not exist.", details={"account": pk})
        return account


class ChannelAccountListView(ChannelAccountView):
    pagination_class = CursorPage
    cursor_ordering = "id"

    @extend_schema(
        parameters=[OpenApiParameter("channel", enum=sorted(CHANNELS))],
        responses={
            200: ChannelAccountSerializer(many=True),
            **error_responses({400: "invalid_request"}),
        },
    )
    def get(self, request: Request) -> Response:
        queryset = self.get_queryset()
        channel = request.query_params.get("channel")
        if channel:
            if channel not in CHANNELS:
                raise InvalidRequest(
                    f"Unknown channel '{channel}'.",
                    details={"field": "channel", "allowed": sorted(CHANNELS)},
                )
            queryset = queryset.filter(channel=channel)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        responses={201: ChannelAccountSerializer, **error_responses({400: "invalid_request"})}
    )
    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = accounts.create_channel_account(**serializer.validated_data)
        return Response(self.get_serializer(account).data, status=status.HTTP_201_CREATED)


class ChannelAccountDetailView(ChannelAccountView):
    @extend_schema(responses={200: ChannelAccountSerializer, **error_responses({404: "not_found"})})
    def get(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        responses={
            200: ChannelAccountSerializer,
            **error_responses({400: "invalid_request", 404: "not_found"}),
        }
    )
    def patch(self, request: Request, pk: str) -> Response:
        account = self.get_object()
        serializer = self.get_serializer(account, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        account = accounts.update_channel_account(account=account, **serializer.validated_data)
        return Response(self.get_serializer(account).data)

    @extend_schema(responses={204: None, **error_responses({404: "not_found"})})
    def delete(self, request: Request, pk: str) -> Response:
        self.get_object().delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChannelAccountTestView(ChannelAccountView):
    serializer_class = ConnectionTestSerializer

    @extend_schema(
        request=None,
        description="Check the account's credentials and reachability without sending. "
        'Answers 200 either way: {"ok": false, "detail": "<error>"} when the check fails.',
        responses={200: ConnectionTestSerializer, **error_responses({404: "not_found"})},
    )
    def post(self, request: Request, pk: str) -> Response:
        ok, detail = accounts.run_connection_test(account=self.get_object())
        return Response({"ok": ok, "detail": detail})


account_urlpatterns = [
    path("channel-accounts", ChannelAccountListView.as_view(), name="channel-account-list"),
    path(
        "channel-accounts/<str:pk>",
        ChannelAccountDetailView.as_view(),
        name="channel-account-detail",
    ),
    path(
        "channel-accounts/<str:pk>/test",
        ChannelAccountTestView.as_view(),
        name="channel-account-test",
    ),
]


# --- provider callbacks --------------------------------------------------------------

urlpatterns = [*account_urlpatterns]
