"""Recipients (scope `send`) and quiet hours (scope `manage`)."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from msgcenter.errors import InvalidRequest, NotFound
from msgcenter.fields import parse_id
from msgcenter.pagination import CursorPage
from msgcenter.schema import error_responses
from tasks_app.models import QuietHours, Recipient
from tasks_app.serializers import QuietHoursSerializer, RecipientSerializer
from tasks_app.services import upsert_recipient

MAX_EXTERNAL_ID = Recipient._meta.get_field("external_id").max_length

# --- recipients ----------------------------------------------------------------------


@extend_schema(tags=["recipients"])
class RecipientView(generics.GenericAPIView):
    required_scope = "send"
    serializer_class = RecipientSerializer
    queryset = Recipient.objects.all()
    lookup_field = "external_id"

    @extend_schema(responses={200: RecipientSerializer, **error_responses({404: "not_found"})})
    def get(self, request: Request, external_id: str) -> Response:
        recipient = Recipient.objects.filter(external_id=external_id).first()
        if recipient is None:
            raise NotFound(
                f"Recipient '{external_id}' does not exist.", details={"recipient": external_id}
            )
        return Response(self.get_serializer(recipient).data)

    @extend_schema(
        description="Create or update (upsert) a recipient. Fields left out keep their "
        "stored value. 201 when created, 200 when updated.",
        responses={
            200: RecipientSerializer,
            201: RecipientSerializer,
            **error_responses({400: "invalid_request"}),
        },
    )
    def put(self, request: Request, external_id: str) -> Response:
        if len(external_id) > MAX_EXTERNAL_ID:
            raise InvalidRequest(
                f"An external id has at most {MAX_EXTERNAL_ID} characters.",
                details={"field": "external_id"},
            )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        recipient, created = upsert_recipient(external_id=external_id, **serializer.validated_data)
        return Response(
            self.get_serializer(recipient).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


# --- quiet hours ---------------------------------------------------------------------


@extend_schema(tags=["quiet hours"])
class QuietHoursView(generics.GenericAPIView):
    required_scope = "manage"
    serializer_class = QuietHoursSerializer
    queryset = QuietHours.objects.all()

    def get_object(self) -> QuietHours:
        pk = self.kwargs["pk"]
        policy_id = parse_id(pk)
        policy = None if policy_id is None else QuietHours.objects.filter(pk=policy_id).first()
        if policy is None:
            raise NotFound(f"Quiet hours '{pk}' do not exist.", details={"quiet_hours": pk})
        return policy


@extend_schema_view(
    get=extend_schema(
        responses={
            200: QuietHoursSerializer(many=True),
            **error_responses({400: "invalid_request"}),
        }
    ),
    post=extend_schema(
        responses={201: QuietHoursSerializer, **error_responses({400: "invalid_request"})}
    ),
)
class QuietHoursListView(QuietHoursView, generics.ListCreateAPIView):
    pagination_class = CursorPage
    cursor_ordering = "id"


@extend_schema_view(
    get=extend_schema(responses={200: QuietHoursSerializer, **error_responses({404: "not_found"})}),
    patch=extend_schema(
        responses={
            200: QuietHoursSerializer,
            **error_responses({400: "invalid_request", 404: "not_found"}),
        }
    ),
    delete=extend_schema(responses={204: None, **error_responses({404: "not_found"})}),
)
class QuietHoursDetailView(QuietHoursView, generics.RetrieveUpdateDestroyAPIView):
    http_method_names = ["get", "patch", "delete", "options"]


urlpatterns = [
    path("recipients/<str:external_id>", RecipientView.as_view(), name="recipient"),
    path("quiet-hours", QuietHoursListView.as_view(), name="quiet-hours-list"),
    path("quiet-hours/<str:pk>", QuietHoursDetailView.as_view(), name="quiet-hours-detail"),
]
