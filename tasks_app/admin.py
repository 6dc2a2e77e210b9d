"""Admin for tasks_app: API clients and keys, recipients and opt-outs, quiet hours,
message tasks (timeline, deliveries, cancel button), task events, recurring sends."""

from __future__ import annotations

import uuid
import zoneinfo

from celery.schedules import crontab
from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import (
    ChoicesDropdownFilter,
    DropdownFilter,
    RangeDateTimeFilter,
    RelatedDropdownFilter,
)
from unfold.decorators import action, display
from unfold.paginator import InfinitePaginator
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget, UnfoldAdminSelectWidget

from channels_app.models import DeliveryRecord, DeliveryState
from msgcenter.admin_helpers import (
    STATE_COLORS,
    ReadOnlyAdminMixin,
    change_url,
    changelist_url,
    channel_choices,
    finish_action,
    get_object_or_404,
    link,
    report_error,
)
from msgcenter.errors import APIError
from templates_app.models import Category

from .models import (
    SCOPES,
    TERMINAL_TASK_STATES,
    ApiClient,
    ApiKey,
    MessageTask,
    Preference,
    QuietHours,
    Recipient,
    RecurringSend,
    TaskEvent,
    TaskState,
)
from .services import cancel_task, create_api_key


def _multi_choice(choices, label) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=label, choices=choices, required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )


def _clean_timezone(value: str) -> str:
    if value:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(_("Unknown timezone '%(tz)s'.") % {"tz": value})
    return value


def _task_id(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term.strip())
    except ValueError:
        return None


# --- API clients -------------------------------------------------------------------

class ApiKeyInline(ReadOnlyAdminMixin, TabularInline):
    """Keys are stored hashed; only their prefix is ever shown."""

    model = ApiKey
    fields = ("prefix", "created_at", "last_used_at", "revoked")
    readonly_fields = fields
    extra = 0


class ApiClientForm(forms.ModelForm):
    scopes = _multi_choice([(s, s) for s in SCOPES], _("scopes"))

    class Meta:
        model = ApiClient
        fields = ("name", "scopes", "rate_limit_per_min", "is_active")


@admin.register(ApiClient)
class ApiClientAdmin(ModelAdmin):
    form = ApiClientForm
    list_display = ("name", "scopes", "rate_limit_per_min", "is_active", "key_count",
                    "created_at")
    list_filter = ("is_active",)
    search_fields = ("name",)
    readonly_fields = ("created_at",)
    inlines = [ApiKeyInline]
    actions_detail = ["create_key_action"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            _key_count=Count("keys", filter=Q(keys__revoked=False)))

    @display(description=_("active keys"), ordering="_key_count")
    def key_count(self, obj: ApiClient) -> int:
        return obj._key_count

    def has_create_key_permission(self, request: HttpRequest, object_id=None) -> bool:
        return request.user.has_perm("tasks_app.add_apikey")

    @action(description=_("Create key"), icon="key", permissions=["create_key"],
            dialog={"title": _("Create a new API key?"),
                    "description": _("The key is shown once, right after this; only its hash "
                                     "is stored."),
                    "form_submit_text": _("Create key")})
    def create_key_action(self, request: HttpRequest, form, object_id: str) -> HttpResponse:
        client = get_object_or_404(self, request, object_id)
        if not client.scopes:
            messages.error(request, _("Give the client at least one scope first."))
        else:
            key, raw = create_api_key(client_name=client.name, scopes=client.scopes)
            self.log_change(request, client, f"Created API key {key.prefix}….")
            messages.success(
                request,
                _("New key for %(client)s: %(key)s — copy it now, it will not be shown "
                  "again.") % {"client": client.name, "key": raw},
            )
        return finish_action(request, change_url(client))


# --- Recipients --------------------------------------------------------------------

class PreferenceForm(forms.ModelForm):
    category = forms.ChoiceField(
        label=_("category"), required=False, widget=UnfoldAdminSelectWidget,
        choices=[("", _("All categories")), *Category.choices])
    channel = forms.ChoiceField(
        label=_("channel"), required=False, widget=UnfoldAdminSelectWidget,
        choices=[("", _("All channels"))])

    class Meta:
        model = Preference
        fields = ("category", "channel", "opted_out")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [("", _("All channels")), *channel_choices()]


class PreferenceInline(TabularInline):
    model = Preference
    form = PreferenceForm
    extra = 0
    readonly_fields = ("updated_at",)


class RecipientForm(forms.ModelForm):
    class Meta:
        model = Recipient
        fields = ("external_id", "name", "email", "phone", "locale", "timezone", "addresses",
                  "tags")

    def clean_timezone(self) -> str:
        return _clean_timezone(self.cleaned_data.get("timezone", ""))


@admin.register(Recipient)
class RecipientAdmin(ModelAdmin):
    form = RecipientForm
    list_display = ("external_id", "name", "email", "phone", "locale", "timezone", "created_at")
    search_fields = ("=external_id", "=email", "=phone", "name")
    search_help_text = _("Exact external id, email or phone; or part of the name.")
    show_full_result_count = False
    readonly_fields = ("deliveries_link", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("external_id", "name", "email", "phone", "locale", "timezone")}),
        (_("Channels"), {"fields": ("addresses", "tags")}),
        (_("Activity"), {"fields": ("deliveries_link", "created_at", "updated_at")}),
    )
    inlines = [PreferenceInline]

    @display(description=_("deliveries"))
    def deliveries_link(self, obj: Recipient) -> str:
        if not obj.pk:
            return "-"
        return link(changelist_url(DeliveryRecord, recipient__id__exact=obj.pk),
                    _("All messages to %(r)s") % {"r": obj.external_id})


# --- Quiet hours -------------------------------------------------------------------

class QuietHoursForm(forms.ModelForm):
    categories = _multi_choice(Category.choices, _("categories"))
    channels = forms.MultipleChoiceField(
        label=_("channels"), required=False, widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text=_("None: every channel."))

    class Meta:
        model = QuietHours
        fields = ("name", "start", "end", "timezone", "categories", "channels", "action",
                  "enabled")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channels"].choices = channel_choices()

    def clean_timezone(self) -> str:
        return _clean_timezone(self.cleaned_data.get("timezone", ""))


@admin.register(QuietHours)
class QuietHoursAdmin(ModelAdmin):
    form = QuietHoursForm
    list_display = ("name", "start", "end", "timezone", "categories", "channels", "action",
                    "enabled")
    list_filter = ("enabled", "action")
    search_fields = ("name",)


# --- Tasks -------------------------------------------------------------------------

class TaskEventInline(ReadOnlyAdminMixin, TabularInline):
    """The task's event log as a timeline (from -> to, at, by, note)."""

    model = TaskEvent
    fields = ("from_state", "to_state", "at", "by", "note")
    readonly_fields = fields
    template = "admin/tasks_app/messagetask/timeline_inline.html"
    verbose_name_plural = _("timeline")


class DeliveryInline(ReadOnlyAdminMixin, TabularInline):
    """The task's deliveries, a page at a time, with a link to the full list."""

    model = DeliveryRecord
    fields = ("delivery_link", "recipient_id_display", "channel", "kind", "state_label",
              "reason", "attempts", "address", "sent_at", "error_short")
    readonly_fields = fields
    per_page = 20
    tab = True
    template_after = "admin/tasks_app/messagetask/deliveries_after.html"
    verbose_name_plural = _("deliveries")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("recipient").order_by("id")

    @display(description=_("delivery"))
    def delivery_link(self, obj: DeliveryRecord) -> str:
        return link(change_url(obj), f"#{obj.pk}")

    @display(description=_("recipient"))
    def recipient_id_display(self, obj: DeliveryRecord) -> str:
        return obj.recipient.external_id if obj.recipient_id else _("(group)")

    @display(description=_("state"))
    def state_label(self, obj: DeliveryRecord) -> str:
        return obj.get_state_display()

    @display(description=_("last error"))
    def error_short(self, obj: DeliveryRecord) -> str:
        return (obj.error[:120] + "…") if len(obj.error) > 120 else obj.error


class StateFilter(DropdownFilter):
    title = _("to state")
    parameter_name = "to_state"

    def lookups(self, request, model_admin):
        return TaskState.choices

    def queryset(self, request, queryset):
        return queryset.filter(to_state=self.value()) if self.value() else queryset


@admin.register(MessageTask)
class MessageTaskAdmin(ModelAdmin):
    """Tasks are created through the API; here they are watched and cancelled."""

    list_display = ("short_id", "template", "client", "state_label", "priority",
                    "recipient_count", "delivery_count", "send_at", "created_at", "finished_at")
    list_select_related = ("template", "client")
    list_filter = (
        ("state", ChoicesDropdownFilter),
        ("priority", ChoicesDropdownFilter),
        ("template", RelatedDropdownFilter),
        ("client", RelatedDropdownFilter),
        ("created_at", RangeDateTimeFilter),
    )
    list_filter_submit = True
    show_full_result_count = False
    paginator = InfinitePaginator  # no COUNT(*) over millions of rows
    search_fields = ("id",)
    search_help_text = _("Task id, idempotency key or template code (exact).")
    fieldsets = (
        (None, {"fields": ("id", "template", "template_version", "client", "state",
                           "priority", "send_at", "created_by")}),
        (_("Deliveries"), {"fields": ("channels", "audience", "recipient_count",
                                      "delivery_count", "delivery_summary")}),
        (_("Params"), {"fields": ("params", "recipient_params")}),
        (_("Idempotency"), {"fields": ("idempotency_key", "request_hash")}),
        (_("Times"), {"fields": ("created_at", "finished_at")}),
    )
    readonly_fields = ("id", "template", "template_version", "client", "state", "priority",
                       "send_at", "created_by", "channels", "audience", "recipient_count",
                       "delivery_count", "delivery_summary", "params", "recipient_params",
                       "idempotency_key", "request_hash", "created_at", "finished_at")
    inlines = [TaskEventInline, DeliveryInline]
    actions_detail = ["cancel_action"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        task_id = _task_id(term)
        if task_id:
            return queryset.filter(id=task_id), False
        return queryset.filter(Q(idempotency_key=term) | Q(template__code=term)), False

    @display(description=_("task"), ordering="id")
    def short_id(self, obj: MessageTask) -> str:
        return str(obj.id)[:8]

    @display(description=_("state"), ordering="state", label=STATE_COLORS)
    def state_label(self, obj: MessageTask):
        return obj.state, obj.get_state_display()

    @display(description=_("deliveries per state"))
    def delivery_summary(self, obj: MessageTask) -> str:
        counts = dict(
            obj.deliveries.order_by().values_list("state").annotate(n=Count("id"))
        )
        if not counts:
            return "-"
        labels = dict(DeliveryState.choices)
        return format_html_join(
            " ", '<a href="{}" class="mr-2">{}: <b>{}</b></a>',
            (
                (changelist_url(DeliveryRecord, task__id__exact=obj.pk, state__exact=state),
                 labels.get(state, state), counts[state])
                for state in labels if state in counts
            ),
        )

    # --- lifecycle buttons ---------------------------------------------------------

    def has_cancel_permission(self, request: HttpRequest, object_id=None) -> bool:
        return request.user.has_perm("tasks_app.change_messagetask")

    def get_actions_detail(self, request: HttpRequest, object_id):
        actions = super().get_actions_detail(request, object_id)
        task = self.get_object(request, object_id)
        if task is None or task.state in TERMINAL_TASK_STATES:
            return [a for a in actions if a.method.original_function_name != "cancel_action"]
        return actions

    @action(description=_("Cancel task"), icon="cancel", permissions=["cancel"],
            dialog={"title": _("Cancel this task?"),
                    "description": _("Deliveries not sent yet are skipped (reason: "
                                     "cancelled). Sent messages cannot be called back."),
                    "form_submit_text": _("Cancel task")})
    def cancel_action(self, request: HttpRequest, form, object_id: str) -> HttpResponse:
        task = get_object_or_404(self, request, object_id)
        try:
            cancel_task(task=task, by=request.user.get_username())
        except APIError as exc:
            report_error(request, exc)
        else:
            messages.success(request, _("Task cancelled."))
            self.log_change(request, task, "Cancelled.")
        return finish_action(request, change_url(task))


@admin.register(TaskEvent)
class TaskEventAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("at", "task_link", "from_state", "to_state", "by", "note")
    list_display_links = ("at",)
    list_select_related = False
    list_filter = (StateFilter, ("at", RangeDateTimeFilter))
    list_filter_submit = True
    show_full_result_count = False
    paginator = InfinitePaginator  # no COUNT(*) over millions of rows
    search_fields = ("task__id",)
    search_help_text = _("Task id (exact).")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        task_id = _task_id(term)
        return (queryset.filter(task_id=task_id) if task_id else queryset.none()), False

    @display(description=_("task"), ordering="task")
    def task_link(self, obj: TaskEvent) -> str:
        url = change_url(MessageTask(pk=obj.task_id))
        return link(url, str(obj.task_id)[:8])


# --- Recurring sends ---------------------------------------------------------------

class RecurringSendForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        label=_("channels"), required=False, widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text=_("None: every channel of the template."))

    class Meta:
        model = RecurringSend
        fields = ("name", "template", "client", "audience", "params", "channels", "minute",
                  "hour", "day_of_week", "day_of_month", "month_of_year", "timezone",
                  "enabled")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channels"].choices = channel_choices()

    def clean_timezone(self) -> str:
        return _clean_timezone(self.cleaned_data.get("timezone", ""))

    def clean(self):
        data = super().clean()
        parts = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
        if all(data.get(p) for p in parts):
            try:
                crontab(**{p: data[p] for p in parts})
            except ValueError as exc:
                raise forms.ValidationError(_("Invalid crontab: %(e)s") % {"e": exc})
        return data


@admin.register(RecurringSend)
class RecurringSendAdmin(ModelAdmin):
    form = RecurringSendForm
    list_display = ("name", "template", "schedule", "timezone", "enabled", "last_run_at",
                    "client")
    list_select_related = ("template", "client")
    list_filter = ("enabled", ("template", RelatedDropdownFilter))
    search_fields = ("name",)
    autocomplete_fields = ("template", "client")
    readonly_fields = ("periodic_task", "last_run_at", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "template", "client", "enabled")}),
        (_("Message"), {"fields": ("audience", "params", "channels")}),
        (_("Schedule"), {"fields": ("minute", "hour", "day_of_week", "day_of_month",
                                    "month_of_year", "timezone")}),
        (_("State"), {"fields": ("periodic_task", "last_run_at", "created_at",
                                 "updated_at")}),
    )

    @display(description=_("crontab"))
    def schedule(self, obj: RecurringSend) -> str:
        return format_html("<code>{}</code>", obj.crontab_expr)
