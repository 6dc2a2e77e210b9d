"""Messages (tasks) and the in-app inbox: thin views over tasks_app.services."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from channels_app.models import DeliveryRecord
from msgcenter.errors import InvalidRequest
from tasks_app import services
from tasks_app.models import Priority


class MessageRequestSerializer(serializers.Serializer):
    template = serializers.CharField(max_length=100)
    recipients = serializers.JSONField()
    params = serializers.DictField(required=False, default=dict)
    channels = serializers.ListField(
        child=serializers.CharField(max_length=30), required=False, allow_empty=False
    )
    send_at = serializers.DateTimeField(required=False, allow_null=True)
    priority = serializers.ChoiceField(
        choices=Priority.values, required=False, default=Priority.NORMAL
    )
    idempotency_key = serializers.CharField(max_length=200, required=False, allow_blank=False)


# --- response shapes (for the OpenAPI document; the views build plain dicts) -------------


class TaskSummarySerializer(serializers.Serializer):
    id = serializers.CharField()
    state = serializers.CharField()
    template = serializers.CharField()
    template_version = serializers.IntegerField()
    recipients = serializers.IntegerField()
    deliveries = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    send_at = serializers.DateTimeField(allow_null=True)


class TaskEventSerializer(serializers.Serializer):
    to = serializers.CharField()
    at = serializers.DateTimeField()
    by = serializers.CharField()
    note = serializers.CharField()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.CharField()
        return fields


class TaskDetailSerializer(TaskSummarySerializer):
    channels = serializers.ListField(child=serializers.CharField())
    priority = serializers.CharField()
    finished_at = serializers.DateTimeField(allow_null=True)
    counts = serializers.DictField(child=serializers.IntegerField())
    events = TaskEventSerializer(many=True)


class TaskStateSerializer(serializers.Serializer):
    id = serializers.CharField()
    state = serializers.CharField()


class DeliveryItemSerializer(serializers.Serializer):
    id = serializers.CharField()
    recipient = serializers.CharField(allow_null=True)
    channel = serializers.CharField()
    kind = serializers.CharField()
    state = serializers.CharField()
    reason = serializers.CharField()
    address = serializers.CharField()
    attempts = serializers.IntegerField()
    error = serializers.CharField()
    provider_message_id = serializers.CharField()
    not_before = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)


class DeliveryPageSerializer(serializers.Serializer):
    results = DeliveryItemSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class InboxItemSerializer(serializers.Serializer):
    id = serializers.CharField()
    task = serializers.CharField()
    template = serializers.CharField()
    subject = serializers.CharField()
    body = serializers.CharField()
    extra = serializers.DictField()
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class InboxPageSerializer(serializers.Serializer):
    unread = serializers.IntegerField()
    results = InboxItemSerializer(many=True)
    next = serializers.URLField(allow_null=True)


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField()


def task_summary(task) -> dict:
    return {
        "id": str(task.pk),
        "state": task.state,
        "template": task.template.code,
        "template_version": task.template_version.version,
        "recipients": task.recipient_count,
        "deliveries": task.delivery_count,
        "created_at": task.created_at.isoformat(),
        "send_at": task.send_at.isoformat() if task.send_at else None,
    }


class MessagesView(APIView):
    required_scope = "send"

    @extend_schema(
        request=MessageRequestSerializer,
        responses={202: TaskSummarySerializer, 200: TaskSummarySerializer},
    )
    def post(self, request):
        if not isinstance(request.data, dict):
            raise InvalidRequest("The body must be a JSON object.")
        serializer = MessageRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = data.get("idempotency_key") or request.headers.get("Idempotency-Key") or None
        body = dict(request.data)
        task, created = services.send_message(
            client=request.user,
            template=data["template"],
            recipients=data["recipients"],
            params=data.get("params"),
            channels=data.get("channels"),
            send_at=data.get("send_at"),
            priority=data.get("priority"),
            idempotency_key=key,
            fingerprint=services.request_fingerprint(body),
        )
        return Response(task_summary(task), status=202 if created else 200)


class MessageDetailView(APIView):
    required_scope = "send"

    @extend_schema(responses=TaskDetailSerializer)
    def get(self, request, task_id):
        task = services.get_task(task_id)
        events = [
            {
                "from": e.from_state,
                "to": e.to_state,
                "at": e.at.isoformat(),
                "by": e.by,
                "note": e.note,
            }
            for e in task.events.all()
        ]
        return Response(
            {
                **task_summary(task),
                "channels": task.channels,
                "priority": task.priority,
                "finished_at": task.finished_at.isoformat() if task.finished_at else None,
                "counts": services.delivery_counts(task),
                "events": events,
            }
        )


class MessageCancelView(APIView):
    required_scope = "send"

    @extend_schema(request=None, responses=TaskStateSerializer)
    def post(self, request, task_id):
        task = services.cancel_task(
            task=services.get_task(task_id), by=getattr(request.user, "name", "")
        )
        return Response({"id": str(task.pk), "state": task.state})


class MessageRecallView(APIView):
    required_scope = "send"

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def post(self, request, task_id):
        """Recall a message: unsent deliveries are skipped, in-app messages leave the
        inboxes; `not_recalled` lists what other channels already delivered."""
        result = services.recall_task(
            task=services.get_task(task_id), by=getattr(request.user, "name", "")
        )
        return Response(result)


def _iso(value):
    return value.isoformat() if value else None


def delivery_item(d: DeliveryRecord) -> dict:
    return {
        "id": str(d.pk),
        "recipient": d.recipient.external_id if d.recipient_id else None,
        "channel": d.channel,
        "kind": d.kind,
        "state": d.state,
        "reason": d.reason,
        "address": d.address,
        "attempts": d.attempts,
        "error": d.error,
        "provider_message_id": d.provider_message_id,
        "not_before": _iso(d.not_before),
        "sent_at": _iso(d.sent_at),
        "delivered_at": _iso(d.delivered_at),
        "read_at": _iso(d.read_at),
    }


class DeliveryCursor(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_paginated_response(self, data):
        return Response(
            {"results": data, "next": self.get_next_link(), "previous": self.get_previous_link()}
        )


class MessageDeliveriesView(APIView):
    required_scope = "send"

    @extend_schema(
        responses=DeliveryPageSerializer,
        parameters=[
            OpenApiParameter("state", str),
            OpenApiParameter("channel", str),
            OpenApiParameter("cursor", str),
        ],
    )
    def get(self, request, task_id):
        task = services.get_task(task_id)
        qs = DeliveryRecord.objects.filter(task=task).select_related("recipient")
        if request.query_params.get("state"):
            qs = qs.filter(state=request.query_params["state"])
        if request.query_params.get("channel"):
            qs = qs.filter(channel=request.query_params["channel"])
        paginator = DeliveryCursor()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([delivery_item(d) for d in page])


class InboxPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


def inbox_item(d: DeliveryRecord) -> dict:
    content = d.content or {}
    return {
        "id": str(d.pk),
        "task": str(d.task_id),
        "template": content.get("template", ""),
        "subject": content.get("subject", ""),
        "body": content.get("body", ""),
        "extra": content.get("extra") or {},
        "created_at": d.created_at.isoformat(),
        "read_at": _iso(d.read_at),
    }


class InboxView(APIView):
    required_scope = "send"

    @extend_schema(
        responses=InboxPageSerializer,
        parameters=[OpenApiParameter("unread", bool), OpenApiParameter("page", int)],
    )
    def get(self, request, external_id):
        recipient = services.get_recipient(external_id)
        unread_only = request.query_params.get("unread", "").lower() in {"1", "true", "yes"}
        qs = services.inbox_queryset(recipient, unread=unread_only).order_by("-created_at", "-id")
        paginator = InboxPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return Response(
            {
                "unread": services.inbox_queryset(recipient, unread=True).count(),
                "results": [inbox_item(d) for d in page],
                "next": paginator.get_next_link(),
            }
        )


class InboxReadView(APIView):
    required_scope = "send"

    @extend_schema(request=None, responses=InboxItemSerializer)
    def post(self, request, external_id, delivery_id):
        recipient = services.get_recipient(external_id)
        item = services.mark_read(recipient=recipient, delivery_id=delivery_id)
        return Response(inbox_item(item))


class InboxReadAllView(APIView):
    required_scope = "send"

    @extend_schema(request=None, responses=MarkedSerializer)
    def post(self, request, external_id):
        recipient = services.get_recipient(external_id)
        return Response({"marked": services.mark_all_read(recipient=recipient)})


urlpatterns = [
    path("messages", MessagesView.as_view(), name="messages"),
    path("messages/<str:task_id>", MessageDetailView.as_view(), name="message-detail"),
    path(
        "messages/<str:task_id>/deliveries",
        MessageDeliveriesView.as_view(),
        name="message-deliveries",
    ),
    path("messages/<str:task_id>/cancel", MessageCancelView.as_view(), name="message-cancel"),
    path("messages/<str:task_id>/recall", MessageRecallView.as_view(), name="message-recall"),
    path("inbox/<str:external_id>", InboxView.as_view(), name="inbox"),
    path("inbox/<str:external_id>/read-all", InboxReadAllView.as_view(), name="inbox-read-all"),
    path(
        "inbox/<str:external_id>/<str:delivery_id>/read", InboxReadView.as_view(), name="inbox-read"
    ),
]
