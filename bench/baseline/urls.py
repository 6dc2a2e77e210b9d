"""A bare DRF endpoint: parse the JSON body, answer 202 — no auth, no database."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView


class BareMessagesView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []

    def post(self, request):
        data = request.data
        return Response(
            {
                "id": "00000000-0000-0000-0000-000000000000",
                "state": "tasked",
                "template": data.get("template"),
                "recipients": len(data.get("recipients") or []),
            },
            status=202,
        )


urlpatterns = [path("api/v1/messages", BareMessagesView.as_view())]
