"""Templates API (scope `manage`): create, list, read, edit the draft, publish, archive,
restore and preview. Views validate input, call one service, serialize the result."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from msgcenter.errors import InvalidRequest
from msgcenter.pagination import CursorPage
from msgcenter.schema import error_responses

from . import services
from .models import Category, MessageTemplate, TemplateStatus
from .serializers import (
    PreviewResultSerializer,
    PreviewSerializer,
    PublishResultSerializer,
    TemplateSerializer,
)

NOT_FOUND = {404: "template_not_found"}
BAD_INPUT = {400: "invalid_request"}


@extend_schema(tags=["templates"])
class TemplateView(generics.GenericAPIView):
    required_scope = "manage"
    serializer_class = TemplateSerializer
    queryset = MessageTemplate.objects.prefetch_related("contents")
    lookup_field = "code"

    def get_object(self) -> MessageTemplate:
        return services.get_template(self.kwargs["code"])


class TemplateListView(TemplateView):
    pagination_class = CursorPage
    cursor_ordering = "code"

    @extend_schema(
        parameters=[
            OpenApiParameter("status", enum=TemplateStatus.values),
            OpenApiParameter("category", enum=Category.values),
        ],
        responses={200: TemplateSerializer(many=True), **error_responses(BAD_INPUT)},
    )
    def get(self, request: Request) -> Response:
        queryset = self.get_queryset()
        for name, allowed in (("status", TemplateStatus.values), ("category", Category.values)):
            value = request.query_params.get(name)
            if value:
                if value not in allowed:
                    raise InvalidRequest(
                        f"Unknown {name} '{value}'.", details={"field": name, "allowed": allowed}
                    )
                queryset = queryset.filter(**{name: value})
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        responses={
            201: TemplateSerializer,
            **error_responses({**BAD_INPUT, 409: "conflict: the code exists"}),
        }
    )
    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        template = services.create_template(**serializer.validated_data)
        return Response(self.get_serializer(template).data, status=status.HTTP_201_CREATED)


class TemplateDetailView(TemplateView):
    @extend_schema(responses={200: TemplateSerializer, **error_responses(NOT_FOUND)})
    def get(self, request: Request, code: str) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        description="Edit the draft. `contents`, when given, replaces every content. "
        "Published versions never change; publish again to freeze the edit.",
        responses={
            200: TemplateSerializer,
            **error_responses(
                {**BAD_INPUT, **NOT_FOUND, 409: "invalid_transition: the template is archived"}
            ),
        },
    )
    def patch(self, request: Request, code: str) -> Response:
        template = self.get_object()
        serializer = self.get_serializer(template, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        template = services.update_template(template=template, **serializer.validated_data)
        return Response(self.get_serializer(template).data)


class TemplatePublishView(TemplateView):
    @extend_schema(
        request=None,
        description="Compile every content and freeze the draft as a new version. "
        "Publishing an unchanged draft returns the current version.",
        responses={
            200: PublishResultSerializer,
            **error_responses(
                {
                    400: "invalid_template (details: channel, field, line) or invalid_request",
                    **NOT_FOUND,
                    409: "invalid_transition: the template is archived",
                }
            ),
        },
    )
    def post(self, request: Request, code: str) -> Response:
        version = services.publish_template(
            template=self.get_object(), by=getattr(request.user, "name", "")
        )
        return Response(
            {
                "code": code,
                "status": TemplateStatus.PUBLISHED,
                "version": version.version,
                "published_at": version.created_at,
            }
        )


class TemplateArchiveView(TemplateView):
    @extend_schema(
        request=None,
        responses={
            200: TemplateSerializer,
            **error_responses({**NOT_FOUND, 409: "invalid_transition: already archived"}),
        },
    )
    def post(self, request: Request, code: str) -> Response:
        template = services.archive_template(template=self.get_object())
        return Response(self.get_serializer(template).data)


class TemplateRestoreView(TemplateView):
    @extend_schema(
        request=None,
        description="Bring an archived template back as a draft.",
        responses={
            200: TemplateSerializer,
            **error_responses(
                {**NOT_FOUND, 409: "invalid_transition: the template is not archived"}
            ),
        },
    )
    def post(self, request: Request, code: str) -> Response:
        template = services.restore_template(template=self.get_object())
        return Response(self.get_serializer(template).data)


class TemplatePreviewView(TemplateView):
    serializer_class = PreviewSerializer

    @extend_schema(
        description="Render the draft for one channel (default: the first content) with "
        "`params` (default: the template's sample params).",
        responses={
            200: PreviewResultSerializer,
            **error_responses(
                {
                    400: "invalid_params (details.errors: [{path, message}]), invalid_template or "
                    "invalid_request",
                    **NOT_FOUND,
                }
            ),
        },
    )
    def post(self, request: Request, code: str) -> Response:
        template = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rendered = services.preview_template(
            template=template,
            params=data["params"],
            channel=data["channel"] or None,
            locale=data["locale"],
        )
        return Response(PreviewResultSerializer(rendered).data)
