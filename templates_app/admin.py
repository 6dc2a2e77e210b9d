"""Admin for templates: draft editing with one tab per channel, publish / archive /
restore buttons that go through the services, and the frozen version history."""

from __future__ import annotations

import re
from datetime import timedelta

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import IntegerField, OuterRef, Subquery, Sum, prefetch_related_objects
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django_fsm import can_proceed
from unfold.admin import ModelAdmin, StackedInline, TabularInline
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminSelectWidget

from msgcenter.admin_helpers import (
    STATE_COLORS,
    ReadOnlyAdminMixin,
    change_url,
    channel_choices,
    finish_action,
    get_object_or_404,
    link,
    report_error,
)
from msgcenter.errors import APIError

from . import console
from .models import MessageTemplate, TemplateContent, TemplateStatus, TemplateVersion
from .rendering import check_schema
from .services import (
    archive_template,
    publish_template,
    restore_template,
)

PREVIEW_TEMPLATE = "admin/templates_app/messagetemplate/preview.html"
DIFF_TEMPLATE = "admin/templates_app/diff.html"


def render_diff(lines, empty) -> str:
    return render_to_string(DIFF_TEMPLATE, {"lines": lines, "empty": empty})


def _channel_select() -> forms.ChoiceField:
    return forms.ChoiceField(
        label=_("channel"),
        choices=[("", "---------"), *channel_choices()],
        widget=UnfoldAdminSelectWidget,
    )


class TemplateContentForm(forms.ModelForm):
    class Meta:
        model = TemplateContent
        fields = (
            "channel",
            "locale",
            "subject",
            "body",
            "body_html",
            "extra",
            "account",
            "fallback_channel",
        )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"] = _channel_select()
        fallback = _channel_select()
        fallback.required = False
        fallback.label = _("fallback channel")
        self.fields["fallback_channel"] = fallback


def _editable(obj: MessageTemplate | None) -> bool:
    return obj is None or obj.status != TemplateStatus.ARCHIVED


_CONTENT_FIELD = re.compile(r"^(contents(?:-\d+)?)-(\d+)-channel$")


def _contents_after_save(data, template: MessageTemplate | None) -> list[tuple]:
    """(channel, locale, prefix) of every content the template will have once the POSTed
    tabs are saved. The contents are spread over one formset per tab, and Django checks
    uniqueness only inside one formset."""
    stored = {}
    if template is not None and template.pk:
        stored = {
            str(pk): (channel, locale, None)
            for pk, channel, locale in template.contents.values_list("pk", "channel", "locale")
        }
    added = []
    for name in data:
        match = _CONTENT_FIELD.match(name)
        if not match:
            continue
        prefix, index = match.groups()
        if int(index) >= int(data.get(f"{prefix}-TOTAL_FORMS") or 0):
            continue
        row = f"{prefix}-{index}"
        pk, channel = data.get(f"{row}-id", ""), data.get(name, "")
        deleted = bool(data.get(f"{row}-DELETE"))
        if pk:
            stored.pop(pk, None)
        if channel and not deleted:
            added.append((channel, (data.get(f"{row}-locale") or "").strip(), prefix))
    return [*stored.values(), *added]


class TemplateContentFormSet(StackedInline.formset):
    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        seen: dict[tuple[str, str], str | None] = {}
        for channel, locale, prefix in _contents_after_save(self.data, self.instance):
            key = (channel, locale)
            if key in seen and self.prefix in (prefix, seen[key]):
                raise forms.ValidationError(
                    _(
                        "Template content with this channel (%(c)s) and locale (%(l)s) already "
                        "exists."
                    )
                    % {"c": channel, "l": locale or "-"}
                )
            seen[key] = prefix


class TemplateContentInline(StackedInline):
    """All contents of a template (used on the add page)."""

    model = TemplateContent
    form = TemplateContentForm
    formset = TemplateContentFormSet
    extra = 1
    tab = True
    autocomplete_fields = ("account",)
    verbose_name_plural = _("contents")

    # An archived template is frozen: restore it before editing its contents.
    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return _editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return _editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return _editable(obj) and super().has_delete_permission(request, obj)


def channel_inline(channel: str, label: str) -> type[TemplateContentInline]:
    """A tab holding the contents of one channel (one per locale)."""

    class ChannelFormSet(TemplateContentInline.formset):
        def get_form_kwargs(self, index):
            kwargs = super().get_form_kwargs(index)
            if index is None or index >= self.initial_form_count():
                # "Add another" in this tab starts a new locale of the same channel.
                kwargs = {**kwargs, "initial": {"channel": channel}}
            return kwargs

    class ChannelContentInline(TemplateContentInline):
        formset = ChannelFormSet
        extra = 0
        verbose_name = label
        verbose_name_plural = label

        def get_queryset(self, request):
            return super().get_queryset(request).filter(channel=channel)

    ChannelContentInline.__name__ = f"ContentInline_{channel}"
    return ChannelContentInline


class NewContentInline(TemplateContentInline):
    """A tab to add the content of a channel the template does not speak yet."""

    extra = 1
    verbose_name = _("new channel")
    verbose_name_plural = _("new channel")

    def get_queryset(self, request):
        return super().get_queryset(request).none()


class VersionInline(ReadOnlyAdminMixin, TabularInline):
    """The version history; each version's page shows its diff to the one before."""

    model = TemplateVersion
    fields = ("version_link", "category", "published_by", "created_at")
    readonly_fields = fields
    tab = True
    per_page = 10
    verbose_name_plural = _("versions")

    @display(description=_("version"))
    def version_link(self, obj: TemplateVersion) -> str:
        return link(change_url(obj), f"v{obj.version}")


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = (
            "code",
            "name",
            "category",
            "description",
            "params_schema",
            "sample_params",
            "dedup_window_seconds",
            "daily_cap",
            "remind_after_seconds",
            "remind_channel",
        )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "remind_channel" in self.fields:
            remind = _channel_select()
            remind.required = False
            remind.label = _("read reminder channel")
            self.fields["remind_channel"] = remind

    def clean_params_schema(self):
        schema = self.cleaned_data.get("params_schema") or {}
        problem = check_schema(schema)
        if problem:
            raise forms.ValidationError(problem)
        return schema


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ModelAdmin):
    form = MessageTemplateForm
    list_display = (
        "code",
        "name",
        "category",
        "status_label",
        "version",
        "deliveries_30d",
        "updated_at",
    )
    list_filter = ("status", "category")
    search_fields = ("code", "name")
    readonly_fields = ("status", "version", "usage", "draft_changes", "created_at", "updated_at")
    # The live preview sits below the tabs, so it stays in view while contents are edited.
    change_form_after_template = "admin/templates_app/messagetemplate/live_preview_panel.html"
    fieldsets = (
        (None, {"fields": ("code", "name", "category", "description", "status", "version")}),
        (_("Parameters"), {"fields": ("params_schema", "sample_params")}),
        (
            _("Policies"),
            {
                "fields": (
                    "dedup_window_seconds",
                    "daily_cap",
                    "remind_after_seconds",
                    "remind_channel",
                )
            },
        ),
        (_("Usage"), {"fields": ("usage",)}),
        (_("History"), {"fields": ("draft_changes", "created_at", "updated_at")}),
    )
    # tasks_app's admin adds "send a test to me" (it creates a task).
    actions_detail = ["publish_action", "archive_action", "restore_action"]

    def get_queryset(self, request):
        # Deliveries of the last 30 days per template, from the dashboard's hourly rollup
        # (index on (template_id, hour)): a few hundred rows per template, never a count
        # over the deliveries themselves.
        stat_model = apps.get_model("channels_app", "DeliveryStat")
        since = timezone.now() - timedelta(days=30)
        recent = (
            stat_model.objects.filter(template_id=OuterRef("pk"), hour__gte=since)
            .order_by()
            .values("template_id")
            .annotate(n=Sum("total"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(_deliveries_30d=Coalesce(Subquery(recent, output_field=IntegerField()), 0))
        )

    @display(description=_("deliveries (30 days)"), ordering="_deliveries_30d")
    def deliveries_30d(self, obj: MessageTemplate) -> int:
        return getattr(obj, "_deliveries_30d", 0)

    @display(description=_("tasks created"))
    def usage(self, obj: MessageTemplate) -> str:
        if not obj.pk:
            return "-"
        counts = console.usage_counts(obj)
        task_model = apps.get_model("tasks_app", "MessageTask")
        tasks = reverse(f"admin:tasks_app_{task_model._meta.model_name}_changelist")
        return format_html(
            "{}: <b>{}</b> &middot; {}: <b>{}</b> &middot; {}: <b>{}</b> &middot; "
            '<a class="text-primary-600 dark:text-primary-500" href="{}?template__id__exact={}">'
            "{}</a>",
            _("last 24 hours"),
            counts["24h"],
            _("7 days"),
            counts["7d"],
            _("30 days"),
            counts["30d"],
            tasks,
            obj.pk,
            _("Open its tasks"),
        )

    @display(description=_("changes since the last version"))
    def draft_changes(self, obj: MessageTemplate) -> str:
        if not obj.pk:
            return "-"
        latest = (
            TemplateVersion.objects.filter(template=obj, version=obj.version).first()
            if obj.version
            else None
        )
        prefetch_related_objects([obj], "contents")
        lines = console.diff_lines(
            console.version_snapshot(latest) if latest else None,
            console.draft_snapshot(obj),
            old_name=f"v{latest.version}" if latest else "",
            new_name="draft",
        )
        return render_diff(lines, _("The draft is the same as the published version."))

    @display(description=_("status"), ordering="status", label=STATE_COLORS)
    def status_label(self, obj: MessageTemplate):
        return obj.status, obj.get_status_display()

    def preview(self, obj: MessageTemplate, user=None) -> str:
        """Rendered here with the stored draft, then re-rendered live from the form as the
        operator types (htmx posts the unsaved form to the live-preview view)."""
        stored = ""
        if obj.pk:
            prefetch_related_objects([obj], "contents")
            stored = render_to_string(
                PREVIEW_TEMPLATE, {"preview": console.preview_stored(obj, user=user)}
            )
        url = reverse("admin:templates_app_messagetemplate_live_preview")
        if obj.pk:
            url += f"?object_id={obj.pk}"
        return format_html(
            '<div id="live-preview" hx-post="{}" hx-include="closest form" hx-target="this" '
            'hx-swap="innerHTML" hx-trigger="input changed delay:600ms from:closest form, '
            'change from:closest form, load">{}</div>',
            url,
            stored,
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["live_preview"] = self.preview(obj or MessageTemplate(), user=request.user)
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    def get_urls(self):
        return [
            path(
                "live-preview/",
                self.admin_site.admin_view(self.live_preview_view),
                name="templates_app_messagetemplate_live_preview",
            ),
            *super().get_urls(),
        ]

    def live_preview_view(self, request: HttpRequest) -> HttpResponse:
        """The preview of the contents as typed (not saved). Problems are shown inline:
        a broken template, bad JSON or params that miss the schema never give a 500."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        object_id = request.GET.get("object_id", "")
        typed = any(console.contents_from_form(request.POST)) or "sample_params" in request.POST
        if request.method == "POST" and typed:
            preview = console.preview_from_form(request.POST, user=request.user)
        elif object_id.isdigit() and (template := self.get_object(request, object_id)):
            preview = console.preview_stored(template, user=request.user)
        else:
            preview = console.Preview()
        return TemplateResponse(request, PREVIEW_TEMPLATE, {"preview": preview})

    def get_inlines(self, request, obj):
        if obj is None:
            return [TemplateContentInline]
        labels = dict(channel_choices())
        channels = sorted(set(obj.contents.values_list("channel", flat=True)))
        inlines = [channel_inline(c, labels.get(c, c)) for c in channels]
        if _editable(obj):
            inlines.append(NewContentInline)
        return [*inlines, VersionInline]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # An archived template is frozen until restored.
        return _editable(obj) and super().has_change_permission(request, obj)

    # --- lifecycle buttons -------------------------------------------------------

    def has_transition_permission(self, request: HttpRequest, object_id=None) -> bool:
        return request.user.has_perm("templates_app.change_messagetemplate")

    def get_actions_detail(self, request: HttpRequest, object_id):
        """Only the transitions the template's current state allows."""
        actions = super().get_actions_detail(request, object_id)
        template = self.get_object(request, object_id)
        if template is None:
            return actions
        allowed = {
            "publish_action": can_proceed(template.publish),
            "archive_action": can_proceed(template.archive),
            "restore_action": can_proceed(template.restore),
        }
        return [a for a in actions if allowed.get(a.method.original_function_name, True)]

    @action(
        description=_("Publish"),
        icon="publish",
        permissions=["transition"],
        dialog={
            "title": _("Publish this template?"),
            "description": _(
                "The current contents are compiled and frozen as a new "
                "version; new messages use it."
            ),
            "form_submit_text": _("Publish"),
        },
    )
    def publish_action(self, request: HttpRequest, form, object_id: str) -> HttpResponse:
        template = get_object_or_404(self, request, object_id)
        latest = template.version
        try:
            version = publish_template(template=template, by=request.user.get_username())
        except APIError as exc:
            report_error(request, exc)
        else:
            if version.version == latest:
                messages.info(
                    request,
                    _("Nothing changed since version %(v)s; it stays the published one.")
                    % {"v": version.version},
                )
            else:
                messages.success(request, _("Published version %(v)s.") % {"v": version.version})
                self.log_change(request, template, f"Published version {version.version}.")
        return finish_action(request, change_url(template))

    @action(
        description=_("Archive"),
        icon="archive",
        permissions=["transition"],
        dialog={
            "title": _("Archive this template?"),
            "description": _(
                "Messages using it are refused until it is restored and published again."
            ),
            "form_submit_text": _("Archive"),
        },
    )
    def archive_action(self, request: HttpRequest, form, object_id: str) -> HttpResponse:
        template = get_object_or_404(self, request, object_id)
        try:
            archive_template(template=template)
        except APIError as exc:
            report_error(request, exc)
        else:
            messages.success(request, _("Template archived."))
            self.log_change(request, template, "Archived.")
        return finish_action(request, change_url(template))

    @action(
        description=_("Restore"),
        icon="unarchive",
        permissions=["transition"],
        dialog={
            "title": _("Restore this template?"),
            "description": _("It comes back as a draft; publish it to use it again."),
            "form_submit_text": _("Restore"),
        },
    )
    def restore_action(self, request: HttpRequest, form, object_id: str) -> HttpResponse:
        template = get_object_or_404(self, request, object_id)
        try:
            restore_template(template=template)
        except APIError as exc:
            report_error(request, exc)
        else:
            messages.success(request, _("Template restored as a draft."))
            self.log_change(request, template, "Restored as a draft.")
        return finish_action(request, change_url(template))


@admin.register(TemplateVersion)
class TemplateVersionAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Published versions are immutable: no add, change or delete."""

    list_display = ("__str__", "template", "version", "category", "published_by", "created_at")
    list_filter = ("category",)
    list_select_related = ("template",)
    search_fields = ("template__code", "published_by")
    date_hierarchy = "created_at"
    fields = (
        "template",
        "version",
        "category",
        "published_by",
        "created_at",
        "changes",
        "params_schema",
        "contents",
        "settings",
    )
    readonly_fields = fields

    @display(description=_("changes since the previous version"))
    def changes(self, obj: TemplateVersion) -> str:
        before = console.previous_version(obj)
        lines = console.diff_lines(
            console.version_snapshot(before) if before else None,
            console.version_snapshot(obj),
            old_name=f"v{before.version}" if before else "",
            new_name=f"v{obj.version}",
        )
        return render_diff(lines, _("Same as the previous version."))
