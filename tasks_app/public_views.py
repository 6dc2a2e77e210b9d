"""Public pages reached from messages by their recipients (no API key)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .models import Recipient
from .preferences import read_token, unsubscribe


@csrf_exempt  # RFC 8058: mail providers POST without cookies or tokens; the link is signed.
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe_view(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirmation page (link scanners must not unsubscribe anyone); POST
    unsubscribes at once, whether from the page's button or a one-click client posting
    `List-Unsubscribe=One-Click`."""
    data = read_token(token)
    if data is None:
        return render(request, "tasks_app/unsubscribe.html", {"invalid": True}, status=404)
    context = {"category": data["category"] or "all", "channel": data["channel"]}
    if request.method == "POST":
        source = "one-click" if request.POST.get("List-Unsubscribe") == "One-Click" else "page"
        if not unsubscribe(token_data=data, source=source):
            return render(request, "tasks_app/unsubscribe.html", {"invalid": True}, status=404)
        return render(request, "tasks_app/unsubscribe.html", {**context, "done": True})
    recipient = Recipient.objects.filter(pk=data["recipient_id"]).only("name").first()
    if recipient is None:
        return render(request, "tasks_app/unsubscribe.html", {"invalid": True}, status=404)
    return render(request, "tasks_app/unsubscribe.html", {**context, "name": recipient.name})
