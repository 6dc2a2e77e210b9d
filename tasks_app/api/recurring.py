"""Recurring sends (scope `manage`): a template sent to an audience on a crontab."""

from __future__ import annotations

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_app.serializers import ChannelField
from msgcenter.errors import InvalidRequest, NotFound
from msgcenter.fields import StrictCharField, TimezoneField, parse_id
from msgcenter.pagination import CursorPage
from msgcenter.schema import error_responses
from tasks_app import recurring
from tasks_app.models import RecurringSend


class RecurringSendSerializer(serializers.Serializer):
    id = serializers.CharField(read_only=True)
    name = StrictCharField(max_length=200)
    template = StrictCharField(max_length=100, help_text="Template code.")
    audience = serializers.JSONField(
        help_text='{"recipients": ["u-1", ...]}, {"tag": "vip"} or {"all": true}.'
    )
    params = serializers.DictField(required=False)
    channels = serializers.ListField(
        child=ChannelField(), required=False, help_text="Empty: every channel of the template."
    )
    crontab = StrictCharField(
        max_length=320,
        help_text='"minute hour day-of-month month day-of-week", e.g. '
        '"0 9 * * 1-5" (09:00 on weekdays).',
    )
    timezone = TimezoneField(required=False, help_text="The crontab's timezone (default UTC).")
    enabled = serializers.BooleanField(required=False)
    next_run_at = serializers.DateTimeField(read_only=True)
    last_run_at = serializers.DateTimeField(read_only=True)
    periodic_task = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


def represent(rs: RecurringSend) -> dict:
    values = recurring.current_values(rs)
    next_run = None
    if rs.enabled:
        next_run = recurring.next_occurrence(recurring._fields(rs), rs.timezone, timezone.now())
    return {
        "id": str(rs.pk),
        **values,
        "next_run_at": next_run.isoformat() if next_run else None,
        "last_run_at": rs.last_run_at.isoformat() if rs.last_run_at else None,
        "periodic_task": str(rs.periodic_task_id) if rs.periodic_task_id else None,
        "created_at": rs.created_at.isoformat(),
        "updated_at": rs.updated_at.isoformat(),
    }


def _object(pk: str) -> RecurringSend:
    rid = parse_id(pk)
    rs = (
        None
        if rid is None
        else (RecurringSend.objects.select_related("template").filter(pk=rid).first())
    )
    if rs is None:
        raise NotFound(f"Recurring send '{pk}' does not exist.", details={"recurring_send": pk})
    return rs


def _data(request: Request) -> dict:
    if not isinstance(request.data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return request.data


@extend_schema(tags=["recurring sends"])
class RecurringSendListView(APIView):
    required_scope = "manage"
    cursor_ordering = "id"

    @extend_schema(responses={200: RecurringSendSerializer(many=True)})
    def get(self, request: Request) -> Response:
        paginator = CursorPage()
        page = paginator.paginate_queryset(
            RecurringSend.objects.select_related("template"), request, view=self
        )
        return paginator.get_paginated_response([represent(rs) for rs in page])

    @extend_schema(
        request=RecurringSendSerializer,
        responses={
            201: RecurringSendSerializer,
            **error_responses(
                {400: "invalid_request", 404: "template_not_found", 409: "template_not_published"}
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = RecurringSendSerializer(data=_data(request))
        serializer.is_valid(raise_exception=True)
        rs = recurring.create_recurring_send(client=request.user, **serializer.validated_data)
        return Response(represent(rs), status=status.HTTP_201_CREATED)


@extend_schema(tags=["recurring sends"])
class RecurringSendDetailView(APIView):
    required_scope = "manage"

    @extend_schema(responses={200: RecurringSendSerializer, **error_responses({404: "not_found"})})
    def get(self, request: Request, pk: str) -> Response:
        return Response(represent(_object(pk)))

    @extend_schema(
        request=RecurringSendSerializer,
        responses={
            200: RecurringSendSerializer,
            **error_responses({400: "invalid_request", 404: "not_found"}),
        },
    )
    def patch(self, request: Request, pk: str) -> Response:
        rs = _object(pk)
        serializer = RecurringSendSerializer(data=_data(request), partial=True)
        serializer.is_valid(raise_exception=True)
        rs = recurring.update_recurring_send(recurring_send=rs, **serializer.validated_data)
        return Response(represent(rs))

    @extend_schema(responses={204: None, **error_responses({404: "not_found"})})
    def delete(self, request: Request, pk: str) -> Response:
        recurring.delete_recurring_send(recurring_send=_object(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("recurring-sends", RecurringSendListView.as_view(), name="recurring-sends"),
    path(
        "recurring-sends/<str:pk>", RecurringSendDetailView.as_view(), name="recurring-send-detail"
    ),
]
