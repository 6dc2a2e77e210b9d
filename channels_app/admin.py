"""Admin for channels_app: channel accounts (secrets masked, circuit status, test
connection), deliveries (traceable by recipient, task and provider id) and the
interactions that follow them. Deliveries and interactions are read-only."""

from __future__ import annotations

import uuid

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import (
    ChoicesDropdownFilter,
    RangeDateTimeFilter,
    RelatedDropdownFilter,
)
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator
from unfold.widgets import UnfoldAdminSelectWidget

from msgcenter.admin_helpers import (
    STATE_COLORS,
    ChannelFilter,
    ReadOnlyAdminMixin,
    change_url,
    channel_choices,
    fieldset_fields,
    get_object_or_404,
    link,
)
from msgcenter.errors import APIError

from .accounts import check_account, masked_config, merge_config, run_connection_test
from .channels import PROVIDERS, get_provider_class, load_all
from .models import ChannelAccount, DeliveryRecord, DeliveryState, Interaction
from .ratelimit import bucket_status

# --- Channel accounts --------------------------------------------------------------


def provider_choices() -> list[tuple[str, str]]:
    load_all()
    return sorted(
        ((p.id, f"{p.label or p.id} ({p.id})") for p in PROVIDERS.values()),
        key=lambda choice: choice[0],
    )


class ChannelAccountForm(forms.ModelForm):
    """Shows the config with secrets masked; a masked value sent back keeps the stored
    secret, so operators can edit other keys without re-typing credentials."""

    class Meta:
        model = ChannelAccount
        fields = (
            "name",
            "channel",
            "provider",
            "config",
            "weight",
            "rate_limit_per_sec",
            "enabled",
            "sandbox",
        )
        help_texts = {"config": _("Secrets show as ******** and are kept unless replaced.")}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"] = forms.ChoiceField(
            label=_("channel"), choices=channel_choices(), widget=UnfoldAdminSelectWidget
        )
        self.fields["provider"] = forms.ChoiceField(
            label=_("provider"), choices=provider_choices(), widget=UnfoldAdminSelectWidget
        )
        if self.instance.pk:
            self.initial["config"] = masked_config(self.instance)

    def clean(self):
        data = super().clean()
        channel, provider = data.get("channel"), data.get("provider")
        config = data.get("config")
        if not channel or not provider or "config" not in data:
            return data
        if config is None:
            config = {}
        if not isinstance(config, dict):
            self.add_error("config", _("The config must be a JSON object."))
            return data
        stored = self.instance.config if self.instance.pk else {}
        merged = merge_config(get_provider_class(provider), stored or {}, config)
        try:
            check_account(channel=channel, provider=provider, config=merged)
        except APIError as exc:
            field = exc.details.get("field")
            self.add_error(field if field in ("channel", "provider") else "config", exc.message)
            return data
        data["config"] = merged
        return data


@admin.register(ChannelAccount)
class ChannelAccountAdmin(ModelAdmin):
    form = ChannelAccountForm
    list_display = (
        "name",
        "channel",
        "provider",
        "enabled",
        "sandbox",
        "weight",
        "rate_limit_per_sec",
        "circuit",
        "consecutive_failures",
        "updated_at",
    )
    list_filter = (ChannelFilter, "provider", "enabled", "sandbox")
    search_fields = ("name", "provider")
    readonly_fields = (
        "config_masked",
        "rate_limit_status",
        "consecutive_failures",
        "paused_until",
        "last_error",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "channel", "provider", "config")}),
        (
            _("Routing"),
            {"fields": ("weight", "rate_limit_per_sec", "rate_limit_status", "enabled", "sandbox")},
        ),
        (_("Circuit breaker"), {"fields": ("consecutive_failures", "paused_until", "last_error")}),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )
    actions = ["test_connection"]
    actions_detail = ["test_connection_detail"]

    def get_fieldsets(self, request: HttpRequest, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            # View-only: never render the raw config, only its masked form.
            return [
                (
                    name,
                    {
                        **opts,
                        "fields": tuple(
                            "config_masked" if f == "config" else f for f in opts["fields"]
                        ),
                    },
                )
                for name, opts in fieldsets
            ]
        return fieldsets

    @display(description=_("config"))
    def config_masked(self, obj: ChannelAccount) -> dict:
        return masked_config(obj)

    @display(description=_("circuit"), label={"open": "danger", "closed": "success"})
    def circuit(self, obj: ChannelAccount):
        if obj.circuit_open:
            until = timezone.localtime(obj.paused_until).strftime("%Y-%m-%d %H:%M:%S")
            return "open", _("paused until %(t)s") % {"t": until}
        return "closed", _("closed")

    @display(description=_("rate limiter now"))
    def rate_limit_status(self, obj: ChannelAccount) -> str:
        if not obj.pk or not obj.rate_limit_per_sec:
            return _("No rate limit.")
        status = bucket_status(obj.pk, obj.rate_limit_per_sec)
        if status is None:
            return _("%(rate)s/s; the bucket is kept per worker process (no Redis).") % {
                "rate": obj.rate_limit_per_sec
            }
        return _("%(rate)s/s; %(tokens)s of %(burst)s tokens available now.") % {
            "rate": obj.rate_limit_per_sec,
            "tokens": f"{status[0]:.1f}",
            "burst": f"{status[1]:g}",
        }

    def has_test_connection_permission(self, request: HttpRequest, object_id=None) -> bool:
        return request.user.has_perm("channels_app.change_channelaccount")

    def _test_one(self, request: HttpRequest, account: ChannelAccount) -> None:
        ok, detail = run_connection_test(account=account)
        (messages.success if ok else messages.error)(request, f"{account}: {detail}")

    @action(description=_("Test connection"), permissions=["test_connection"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet) -> None:
        for account in queryset:
            self._test_one(request, account)

    @action(
        description=_("Test connection"),
        icon="network_check",
        permissions=["test_connection"],
        url_path="test-connection",
    )
    def test_connection_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        account = get_object_or_404(self, request, object_id)
        self._test_one(request, account)
        return HttpResponseRedirect(change_url(account))


# --- Deliveries --------------------------------------------------------------------


class InteractionInline(ReadOnlyAdminMixin, TabularInline):
    model = Interaction
    fields = ("kind", "url", "created_at", "payload")
    readonly_fields = fields
    per_page = 20
    tab = True


@admin.register(DeliveryRecord)
class DeliveryRecordAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Written by the pipeline only. Lists stay fast: no full counts, exact indexed
    searches, filters with fixed choices."""

    list_display = (
        "id",
        "task_link",
        "template_code",
        "recipient_display",
        "channel",
        "kind",
        "state_label",
        "reason",
        "attempts",
        "release_at",
        "sent_at",
        "created_at",
    )
    list_select_related = ("recipient", "task__template")
    list_filter = (
        ("state", ChoicesDropdownFilter),
        ChannelFilter,
        ("kind", ChoicesDropdownFilter),
        ("reason", ChoicesDropdownFilter),
        ("task__template", RelatedDropdownFilter),
        ("created_at", RangeDateTimeFilter),
    )
    list_filter_submit = True
    show_full_result_count = False
    paginator = InfinitePaginator  # no COUNT(*) over millions of rows
    search_fields = ("provider_message_id",)
    search_help_text = _("Exact recipient external id, task id, provider message id or #id.")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "task",
                    "recipient",
                    "channel",
                    "kind",
                    "parent",
                    "state",
                    "reason",
                    "release_at",
                )
            },
        ),
        (
            _("Sending"),
            {
                "fields": (
                    "account",
                    "provider",
                    "address",
                    "mentions",
                    "provider_message_id",
                    "attempts",
                    "error",
                    "attempt_table",
                )
            },
        ),
        (_("Content"), {"fields": ("content",)}),
        (
            _("Stages"),
            {
                "fields": (
                    "created_at",
                    "not_before",
                    "queued_at",
                    "lease_until",
                    "sent_at",
                    "delivered_at",
                    "read_at",
                    "failed_at",
                    "recalled_at",
                )
            },
        ),
    )
    readonly_fields = fieldset_fields(fieldsets)
    inlines = [InteractionInline]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith("#") and term[1:].isdigit():
            return queryset.filter(pk=int(term[1:])), False
        try:
            return queryset.filter(task_id=uuid.UUID(term)), False
        except ValueError:
            pass
        # Resolve the recipient first so both branches of the OR use an index.
        recipient_model = apps.get_model("tasks_app", "Recipient")
        recipient_ids = list(
            recipient_model.objects.filter(external_id=term).values_list("id", flat=True)[:1]
        )
        return queryset.filter(
            Q(recipient_id__in=recipient_ids) | Q(provider_message_id=term)
        ), False

    @display(description=_("task"), ordering="task")
    def task_link(self, obj: DeliveryRecord) -> str:
        return link(change_url(obj.task), str(obj.task_id)[:8])

    @display(description=_("template"))
    def template_code(self, obj: DeliveryRecord) -> str:
        return obj.task.template.code

    @display(description=_("recipient"), ordering="recipient")
    def recipient_display(self, obj: DeliveryRecord) -> str:
        return obj.recipient.external_id if obj.recipient_id else _("(group)")

    @display(description=_("state"), ordering="state", label=STATE_COLORS)
    def state_label(self, obj: DeliveryRecord):
        return obj.state, obj.get_state_display()

    @display(description=_("every attempt"))
    def attempt_table(self, obj: DeliveryRecord) -> str:
        log = obj.attempt_log or []
        if not log:
            return _("No attempt yet.")
        ok, failed = _("sent"), _("error")
        rows = []
        for number, attempt in enumerate(log, start=1):
            at = parse_datetime(attempt.get("at") or "")
            rows.append(
                (
                    number,
                    timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S") if at else "-",
                    attempt.get("provider") or "-",
                    attempt.get("account") or "-",
                    "text-green-700 dark:text-green-400"
                    if attempt.get("ok")
                    else "text-red-600 dark:text-red-500",
                    ok if attempt.get("ok") else failed,
                    _("permanent") if attempt.get("permanent") else "",
                    attempt.get("error") or "",
                )
            )
        head = format_html(
            "<tr><th class='pr-3 text-left'>#</th><th class='pr-3 text-left'>{}</th>"
            "<th class='pr-3 text-left'>{}</th><th class='pr-3 text-left'>{}</th>"
            "<th class='pr-3 text-left'>{}</th><th class='text-left'>{}</th></tr>",
            _("at"),
            _("provider"),
            _("account"),
            _("result"),
            _("error"),
        )
        body = format_html_join(
            "",
            "<tr data-attempt='{}'><td class='pr-3'>{}</td><td class='pr-3'>{}</td>"
            "<td class='pr-3'>{}</td><td class='pr-3'>{}</td>"
            "<td class='pr-3 {}'>{} {}</td><td style='white-space: pre-wrap'>{}</td></tr>",
            ((r[0], *r) for r in rows),
        )
        return format_html("<table class='w-full' data-attempts>{}{}</table>", head, body)

    @display(description=_("release at"))
    def release_at(self, obj: DeliveryRecord):
        return obj.not_before if obj.state == DeliveryState.DEFERRED else None


@admin.register(Interaction)
class InteractionAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("id", "delivery_link", "kind", "url", "created_at")
    list_filter = (("kind", ChoicesDropdownFilter), ("created_at", RangeDateTimeFilter))
    list_filter_submit = True
    show_full_result_count = False
    paginator = InfinitePaginator  # no COUNT(*) over millions of rows
    search_fields = ("delivery__id",)
    search_help_text = _("Delivery id (exact).")
    fields = ("delivery", "kind", "url", "created_at", "payload")
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().lstrip("#")
        if not term:
            return queryset, False
        if not term.isdigit():
            return queryset.none(), False
        return queryset.filter(delivery_id=int(term)), False

    @display(description=_("delivery"), ordering="delivery")
    def delivery_link(self, obj: Interaction) -> str:
        return link(change_url(DeliveryRecord(pk=obj.delivery_id)), f"#{obj.delivery_id}")
