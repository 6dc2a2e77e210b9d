"""Click tracking: links in a delivery's content become /t/<signed token>, which records
a `clicked` Interaction and redirects to the original URL."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.utils import timezone

from .models import DeliveryRecord, Interaction, InteractionKind

SALT = "msgcenter.click"
_HREF = re.compile(r'(href\s*=\s*["\'])(https?://[^"\']+)(["\'])', re.IGNORECASE)
_BARE = re.compile(r"(?<![\"'=/])\bhttps?://[^\s<>\"')]+")


def make_token(delivery_id: int, url: str) -> str:
    return signing.dumps({"d": delivery_id, "u": url}, salt=SALT, compress=True)


def tracking_url(delivery_id: int, url: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/t/{make_token(delivery_id, url)}"


def _is_ours(url: str) -> bool:
    return url.startswith(settings.PUBLIC_BASE_URL.rstrip("/") + "/")


def wrap_html(html: str, delivery_id: int) -> str:
    def sub(m: re.Match) -> str:
        url = m.group(2)
        return (
            m.group(0)
            if _is_ours(url)
            else f"{m.group(1)}{tracking_url(delivery_id, url)}{m.group(3)}"
        )

    return _HREF.sub(sub, html)


def wrap_text(text: str, delivery_id: int) -> str:
    return _BARE.sub(
        lambda m: m.group(0) if _is_ours(m.group(0)) else tracking_url(delivery_id, m.group(0)),
        text,
    )


def click(request: HttpRequest, token: str) -> HttpResponseRedirect:
    try:
        data = signing.loads(token, salt=SALT)
        delivery_id, url = int(data["d"]), str(data["u"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise Http404("Unknown link")
    if urlsplit(url).scheme not in ("http", "https"):
        raise Http404("Unknown link")
    if DeliveryRecord.objects.filter(pk=delivery_id).exists():
        Interaction.objects.create(
            delivery_id=delivery_id,
            kind=InteractionKind.CLICKED,
            url=url[:2000],
            created_at=timezone.now(),
            payload={"user_agent": request.headers.get("User-Agent", "")[:300]},
        )
    return HttpResponseRedirect(url)
