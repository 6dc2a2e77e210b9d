"""Small pieces shared by the admin modules of the three apps."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import DropdownFilter

from msgcenter.errors import APIError

# Badge colours (unfold label variants) per lifecycle state.
STATE_COLORS = {
    # templates
    "draft": "info",
    "published": "success",
    "archived": "warning",
    # tasks
    "initialized": "info",
    "tasked": "info",
    "scheduled": "warning",
    "pushing": "primary",
    "completed": "success",
    "cancelled": "warning",
    # deliveries
    "pending": "info",
    "deferred": "warning",
    "queued": "info",
    "sending": "primary",
    "sent": "success",
    "delivered": "success",
    "skipped": "warning",
    "failed": "danger",
}


def channel_choices() -> list[tuple[str, str]]:
    from channels_app.channels import CHANNELS

    return [(kind.kind, kind.label) for kind in CHANNELS.values()]


class ChannelFilter(DropdownFilter):
    """Channels from the registry: no SELECT DISTINCT over a big table."""

    title = _("channel")
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        return channel_choices()

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(channel=self.value())
        return queryset


def fieldset_fields(fieldsets: tuple) -> tuple[str, ...]:
    """Every field named in `fieldsets`: the readonly_fields of a view-only page."""
    return tuple(name for _title, options in fieldsets for name in options["fields"])


class ReadOnlyAdminMixin:
    """Rows written by the system only: operators look, never add, edit or delete."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def get_object_or_404(model_admin, request: HttpRequest, object_id: str) -> Model:
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404(f"{model_admin.model._meta.verbose_name} not found")
    return obj


def change_url(obj: Model) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def changelist_url(model: type[Model], **params: object) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    if params:
        from urllib.parse import urlencode

        url += "?" + urlencode({k: str(v) for k, v in params.items()})
    return url


def link(url: str, text: object) -> str:
    return format_html(
        '<a class="text-primary-600 dark:text-primary-500" href="{}">{}</a>', url, text
    )


def finish_action(request: HttpRequest, url: str) -> HttpResponse:
    """End an unfold dialog action: htmx follows HX-Redirect, a plain POST a 302."""
    if request.headers.get("HX-Request"):
        return HttpResponse(headers={"HX-Redirect": url})
    return HttpResponseRedirect(url)


def report_error(request: HttpRequest, exc: APIError) -> None:
    messages.error(request, exc.message)
