"""Admin for tasks_app: API clients and keys, recipients (with everything sent to them)
and opt-outs, quiet hours, message tasks (lifecycle diagram and timeline, deliveries,
cancel / retry / release buttons), task events, recurring sends. It also gives the
template page its "send a test to me" button, which creates a task."""

from __future__ import annotations

import uuid
import zoneinfo

from celery.schedules import crontab
from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
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

from channels_app.models import DeliveryRecord, DeliveryState, Interaction
from msgcenter.admin_helpers import (
    STATE_COLORS,
    ReadOnlyAdminMixin,
    change_url,
    changelist_url,
    channel_choices,
    fieldset_fields,
    finish_action,
    get_object_or_404,
    link,
    report_error,
)
from msgcenter.errors import APIError
from templates_app.admin import MessageTemplateAdmin
from templates_app.models import Category, MessageTemplate, TemplateStatus

from . import console
from .models import (
    SCOPES,
    TERMINAL_TASK_STATES,
    ApiClient,
    ApiKey,
    MessageTask,
    Preference,
    QuietHours,
    ReadReminder,
    Recipient,
    RecurringSend,
    TaskEvent,
    TaskState,
)
from .operations import STAFF_PREFIX, release_deferred_now, retry_failed, retryable, send_test
from .services import cancel_task, create_api_key


def _multi_choice(choices, label) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=label,
        choices=choices,
        required=False,
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
    list_display = ("name", "scopes", "rate_limit_per_min", "is_active", "key_count", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name",)
    readonly_fields = ("created_at",)
    inlines = [ApiKeyInline]
    actions_detail = ["create_key_action"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_key_count=Count("keys", filter=Q(keys__revoked=False)))
        )

    @display(description=_("active keys"), ordering="_key_count")
    def key_count(self, obj: ApiClient) -> int:
        return obj._key_count

    def has_create_key_permission(self, request: HttpRequest, object_id=None) -> bool:
        return request.user.has_perm("tasks_app.add_apikey")

    @action(
        description=_("Create key"),
        icon="key",
        permissions=["create_key"],
        dialog={
            "title": _("Create a new API key?"),
            "description": _("The key is shown once, right after this; only its hash is stored."),
            "form_submit_text": _("Create key"),
        },
    )
    def create_key_action(self, request: HttpRequest, form, object_id: str) -> HttpResponse:
        client = get_object_or_404(self, request, object_id)
        if not client.scopes:
            messages.error(request, _("Give the client at least one scope first."))
        else:
            key, raw = create_api_key(client_name=client.name, scopes=client.scopes)
            self.log_change(request, client, f"Created API key {key.prefix}….")
            messages.success(
                request,
                _("New key for %(client)s: %(key)s — copy it now, it will not be shown again.")
                % {"client": client.name, "key": raw},
            )
        return finish_action(request, change_url(client))


# --- Recipients --------------------------------------------------------------------


class PreferenceForm(forms.ModelForm):
    category = forms.ChoiceField(
        label=_("category"),
        required=False,
        widget=UnfoldAdminSelectWidget,
        choices=[("", _("All categories")), *Category.choices],
    )
    channel = forms.ChoiceField(
        label=_("channel"),
        required=False,
        widget=UnfoldAdminSelectWidget,
        choices=[("", _("All channels"))],
    )

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
        fields = (
            "external_id",
            "name",
            "email",
            "phone",
            "locale",
            "timezone",
            "addresses",
            "tags",
        )

    def clean_timezone(self) -> str:
        return _clean_timezone(self.cleaned_data.get("timezone", ""))


class RecipientDeliveryInline(ReadOnlyAdminMixin, TabularInline):
    """Trace by recipient: everything sent to them, newest first, a page at a time."""

    model = DeliveryRecord
    fk_name = "recipient"
    fields = (
        "delivery_link",
        "created_at",
        "task_link",
        "template_code",
        "channel",
        "kind",
        "state_label",
        "reason",
        "sent_at",
        "read_at",
        "error_short",
    )
    readonly_fields = fields
    per_page = 20
    tab = True
    verbose_name_plural = _("messages sent")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("task__template")
            .order_by("-created_at", "-id")
        )

    @display(description=_("delivery"))
    def delivery_link(self, obj: DeliveryRecord) -> str:
        return link(change_url(obj), f"#{obj.pk}")

    @display(description=_("task"))
    def task_link(self, obj: DeliveryRecord) -> str:
        return link(change_url(obj.task), str(obj.task_id)[:8])

    @display(description=_("template"))
    def template_code(self, obj: DeliveryRecord) -> str:
        return obj.task.template.code

    @display(description=_("state"), label=STATE_COLORS)
    def state_label(self, obj: DeliveryRecord):
        return obj.state, obj.get_state_display()

    @display(description=_("last error"))
    def error_short(self, obj: DeliveryRecord) -> str:
        return (obj.error[:120] + "…") if len(obj.error) > 120 else obj.error


RECIPIENT_INTERACTIONS = 50


@admin.register(Recipient)
class RecipientAdmin(ModelAdmin):
    form = RecipientForm
    list_display = ("external_id", "name", "email", "phone", "locale", "timezone", "created_at")
    search_fields = ("=external_id", "=email", "=phone", "name")
    search_help_text = _("Exact external id, email or phone; or part of the name.")
    show_full_result_count = False
    readonly_fields = ("deliveries_link", "interactions", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("external_id", "name", "email", "phone", "locale", "timezone")}),
        (_("Channels"), {"fields": ("addresses", "tags")}),
        (
            _("Activity"),
            {"fields": ("deliveries_link", "interactions", "created_at", "updated_at")},
        ),
    )
    inlines = [RecipientDeliveryInline, PreferenceInline]

    @display(description=_("latest interactions"))
    def interactions(self, obj: Recipient) -> str:
        if not obj.pk:
            return "-"
        rows = list(
            Interaction.objects.filter(delivery__recipient=obj)
            .select_related("delivery")
            .order_by("-created_at")[:RECIPIENT_INTERACTIONS]
        )
        if not rows:
            return _("None yet.")
        return format_html(
            '<table class="w-full" data-interactions><tbody>{}</tbody></table>',
            format_html_join(
                "",
                '<tr><td class="pr-4">{}</td><td class="pr-4">{}</td>'
                '<td class="pr-4">{}</td><td>{}</td></tr>',
                (
                    (
                        timezone.localtime(i.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                        i.get_kind_display(),
                        link(
                            change_url(DeliveryRecord(pk=i.delivery_id)),
                            f"#{i.delivery_id} {i.delivery.channel}",
                        ),
                        i.url or "",
                    )
                    for i in rows
                ),
            ),
        )

    @display(description=_("deliveries"))
    def deliveries_link(self, obj: Recipient) -> str:
        if not obj.pk:
            return "-"
        return link(
            changelist_url(DeliveryRecord, recipient__id__exact=obj.pk),
            _("All messages to %(r)s") % {"r": obj.external_id},
        )


# --- Quiet hours -------------------------------------------------------------------


class QuietHoursForm(forms.ModelForm):
    categories = _multi_choice(Category.choices, _("categories"))
    channels = forms.MultipleChoiceField(
        label=_("channels"),
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text=_("None: every channel."),
    )

    class Meta:
        model = QuietHours
        fields = ("name", "start", "end", "timezone", "categories", "channels", "action", "enabled")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channels"].choices = channel_choices()

    def clean_timezone(self) -> str:
        return _clean_timezone(self.cleaned_data.get("timezone", ""))


@admin.register(QuietHours)
class QuietHoursAdmin(ModelAdmin):
    form = QuietHoursForm
    list_display = (
        "name",
        "start",
        "end",
        "timezone",
        "categories",
        "channels",
        "action",
        "enabled",
    )
    list_filter = ("enabled", "action")
    search_fields = ("name",)


# --- Tasks -------------------------------------------------------------------------


class DeliveryInline(ReadOnlyAdminMixin, TabularInline):
    """The task's deliveries, a page at a time, with a link to the full list."""

    model = DeliveryRecord
    fields = (
        "delivery_link",
        "recipient_id_display",
        "channel",
        "kind",
        "state_label",
        "reason",
        "attempts",
        "address",
        "sent_at",
        "error_short",
    )
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

    list_display = (
        "short_id",
        "template",
        "client",
        "state_label",
        "priority",
        "recipient_count",
        "delivery_count",
        "send_at",
        "created_at",
        "finished_at",
    )
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
        (
            None,
            {
                "fields": (
                    "id",
                    "template",
                    "template_version",
                    "client",
                    "state",
                    "priority",
                    "send_at",
                    "created_by",
                )
            },
        ),
        (
            _("Deliveries"),
            {
                "fields": (
                    "channels",
                    "audience",
                    "recipient_count",
                    "delivery_count",
                    "delivery_summary",
                )
            },
        ),
        (_("Params"), {"fields": ("params", "recipient_params")}),
        (_("Idempotency"), {"fields": ("idempotency_key", "request_hash")}),
        (_("Times"), {"fields": ("created_at", "finished_at")}),
    )
    readonly_fields = fieldset_fields(fieldsets)
    inlines = [DeliveryInline]
    actions_detail = ["retry_action", "release_action", "cancel_action"]
    # The lifecycle diagram and timeline, full width above the tabs.
    change_form_before_template = "admin/tasks_app/messagetask/lifecycle_panel.html"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["lifecycle"] = self.lifecycle(obj)
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

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

    @display(description=_("lifecycle"))
    def lifecycle(self, obj: MessageTask) -> str:
        events = list(obj.events.all())
        labels = dict(TaskState.choices)
        timeline = [
            {
                "to_state": e.to_state,
                "from": labels.get(e.from_state, e.from_state),
                "to": labels.get(e.to_state, e.to_state),
                "note_only": e.from_state == e.to_state,
                "at": e.at,
                "by": e.by,
                "note": e.note,
            }
            for e in events
        ]
        return render_to_string(
            "admin/tasks_app/messagetask/lifecycle.html",
            {"diagram": console.diagram(obj.state, events), "events": timeline},
        )

    @display(description=_("deliveries per state"))
    def delivery_summary(self, obj: MessageTask) -> str:
        counts = dict(obj.deliveries.order_by().values_list("state").annotate(n=Count("id")))
        if not counts:
            return "-"
        labels = dict(DeliveryState.choices)
        return format_html_join(
            " ",
            '<a href="{}" class="mr-2">{}: <b>{}</b></a>',
            (
                (
                    changelist_url(DeliveryRecord, task__id__exact=obj.pk, state__exact=state),
                    labels.get(state, state),
                    counts[state],
                )
                for state in labels
                if state in counts
            ),
        )

    # --- lifecycle buttons ---------------------------------------------------------

    def has_cancel_permission(self, request: HttpRequest, object_id=None) -> bool:
        return request.user.has_perm("tasks_app.change_messagetask")

    has_retry_permission = has_release_permission = has_cancel_permission

    def get_actions_detail(self, request: HttpRequest, object_id):
        """Only the buttons that can do something for this task now."""
        actions = super().get_actions_detail(request, object_id)
        task = self.get_object(request, object_id)
        if task is None:
            return actions
        deliveries = DeliveryRecord.objects.filter(task=task)
        allowed = {
            "cancel_action": task.state not in TERMINAL_TASK_STATES,
            "retry_action": task.state in (TaskState.PUSHING, TaskState.COMPLETED, TaskState.FAILED)
            and retryable(task).exists(),
            "release_action": task.state == TaskState.SCHEDULED
            or (
                task.state == TaskState.PUSHING
                and deliveries.filter(state=DeliveryState.DEFERRED).exists()
            ),
        }
        return [a for a in actions if allowed.get(a.method.original_function_name, True)]

    @action(
        description=_("Retry failed deliveries"),
        icon="replay",
        permissions=["retry"],
        dialog={
            "title": _("Retry the failed deliveries?"),
            "description": _(
                "Each failed delivery is sent again as a new delivery "
                "linked to it. A finished task stays as it is: the retry "
                "runs as a new task."
            ),
            "form_submit_text": _("Retry"),
        },
    )
    def retry_action(self, request: HttpRequest, form, object_id: str) -> HttpResponse:
        task = get_object_or_404(self, request, object_id)
        try:
            result = retry_failed(task=task, by=request.user.get_username())
        except APIError as exc:
            report_error(request, exc)
            return finish_action(request, change_url(task))
        self.log_change(request, task, f"Retried {result.created} failed deliveries.")
        if result.new_task:
            messages.success(
                request,
                _("%(n)s failed deliveries are retried in this new task.") % {"n": result.created},
            )
        else:
            messages.success(
                request, _("%(n)s failed deliveries are retried.") % {"n": result.created}
            )
        return finish_action(request, change_url(result.task))

    @action(
        description=_("Release deferred now"),
        icon="fast_forward",
        permissions=["release"],
        dialog={
            "title": _("Send what waits now?"),
            "description": _(
                "A scheduled task starts now; deferred deliveries are "
                "sent now, quiet hours lifted. Opt-outs, dedup and "
                "frequency caps still apply."
            ),
            "form_submit_text": _("Release now"),
        },
    )
    def release_action(self, request: HttpRequest, form, object_id: str) -> HttpResponse:
        task = get_object_or_404(self, request, object_id)
        try:
            result = release_deferred_now(task=task, by=request.user.get_username())
        except APIError as exc:
            report_error(request, exc)
        else:
            if result["task_released"]:
                messages.success(request, _("The task starts now."))
            else:
                messages.success(
                    request, _("%(n)s deferred deliveries released.") % {"n": result["deliveries"]}
                )
            self.log_change(request, task, "Released deferred work now.")
        return finish_action(request, change_url(task))

    @action(
        description=_("Cancel task"),
        icon="cancel",
        permissions=["cancel"],
        dialog={
            "title": _("Cancel this task?"),
            "description": _(
                "Deliveries not sent yet are skipped (reason: "
                "cancelled). Sent messages cannot be called back."
            ),
            "form_submit_text": _("Cancel task"),
        },
    )
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


# --- Read reminders ----------------------------------------------------------------


@admin.register(ReadReminder)
class ReadReminderAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Reminders waiting for their time, and what became of them (sent, or not needed
    because the message was read)."""

    list_display = ("due_at", "state", "channel", "delivery_link", "reminder_link", "done_at")
    list_display_links = ("due_at",)
    list_filter = ("state", "channel", ("due_at", RangeDateTimeFilter))
    list_filter_submit = True
    show_full_result_count = False
    paginator = InfinitePaginator
    search_fields = ("delivery__id",)
    search_help_text = _("In-app delivery id (exact).")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().lstrip("#")
        if not term:
            return queryset, False
        return (
            queryset.filter(delivery_id=int(term)) if term.isdigit() else queryset.none()
        ), False

    @display(description=_("in-app message"), ordering="delivery")
    def delivery_link(self, obj: ReadReminder) -> str:
        return link(change_url(DeliveryRecord(pk=obj.delivery_id)), f"#{obj.delivery_id}")

    @display(description=_("reminder"))
    def reminder_link(self, obj: ReadReminder) -> str:
        if not obj.reminder_id:
            return "-"
        return link(change_url(DeliveryRecord(pk=obj.reminder_id)), f"#{obj.reminder_id}")


# --- Recurring sends ---------------------------------------------------------------


class RecurringSendForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        label=_("channels"),
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text=_("None: every channel of the template."),
    )

    class Meta:
        model = RecurringSend
        fields = (
            "name",
            "template",
            "client",
            "audience",
            "params",
            "channels",
            "minute",
            "hour",
            "day_of_week",
            "day_of_month",
            "month_of_year",
            "timezone",
            "enabled",
        )

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
    list_display = ("name", "template", "schedule", "timezone", "enabled", "last_run_at", "client")
    list_select_related = ("template", "client")
    list_filter = ("enabled", ("template", RelatedDropdownFilter))
    search_fields = ("name",)
    autocomplete_fields = ("template", "client")
    readonly_fields = ("periodic_task", "last_run_at", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "template", "client", "enabled")}),
        (_("Message"), {"fields": ("audience", "params", "channels")}),
        (
            _("Schedule"),
            {
                "fields": (
                    "minute",
                    "hour",
                    "day_of_week",
                    "day_of_month",
                    "month_of_year",
                    "timezone",
                )
            },
        ),
        (_("State"), {"fields": ("periodic_task", "last_run_at", "created_at", "updated_at")}),
    )

    @display(description=_("crontab"))
    def schedule(self, obj: RecurringSend) -> str:
        return format_html("<code>{}</code>", obj.crontab_expr)


# --- "send a test to me" on the template page ---------------------------------------


class MessageTemplateConsoleAdmin(MessageTemplateAdmin):
    """The template admin plus a button that sends the published version to the staff
    user (it creates a task, so it lives on this side of the app dependency)."""

    actions_detail = ["send_test_action", *MessageTemplateAdmin.actions_detail]

    def has_send_test_permission(self, request: HttpRequest, object_id=None) -> bool:
        return request.user.has_perm("tasks_app.add_messagetask")

    def get_actions_detail(self, request: HttpRequest, object_id):
        actions = super().get_actions_detail(request, object_id)
        template = self.get_object(request, object_id)
        if template is not None and template.status != TemplateStatus.PUBLISHED:
            actions = [a for a in actions if a.method.original_function_name != "send_test_action"]
        return actions

    @action(
        description=_("Send a test to me"),
        icon="outgoing_mail",
        permissions=["send_test"],
        dialog={
            "title": _("Send a test to yourself?"),
            "description": _(
                "The published version goes, with the sample params, to "
                "your in-app inbox and to your email address."
            ),
            "form_submit_text": _("Send test"),
        },
    )
    def send_test_action(self, request: HttpRequest, form, object_id: str) -> HttpResponse:
        template = get_object_or_404(self, request, object_id)
        try:
            task = send_test(template=template, user=request.user)
        except APIError as exc:
            report_error(request, exc)
            return finish_action(request, change_url(template))
        self.log_change(request, template, f"Sent a test (task {task.pk}).")
        messages.success(
            request,
            _("Test sent to %(who)s on %(channels)s; follow it here.")
            % {
                "who": f"{STAFF_PREFIX}{request.user.get_username()}",
                "channels": ", ".join(task.channels),
            },
        )
        return finish_action(request, change_url(task))


admin.site.unregister(MessageTemplate)
admin.site.register(MessageTemplate, MessageTemplateConsoleAdmin)
