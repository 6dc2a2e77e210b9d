"""Admin for templates: draft editing with one tab per channel, publish / archive /
restore buttons that go through the services, and the frozen version history."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin, messages
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html_join
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

from .models import MessageTemplate, TemplateContent, TemplateStatus, TemplateVersion
from .rendering import check_schema
from .services import (
    archive_template,
    preview_template,
    publish_template,
    restore_template,
)


def _channel_select() -> forms.ChoiceField:
    return forms.ChoiceField(
        label=_("channel"),
        choices=[("", "---------"), *channel_choices()],
        widget=UnfoldAdminSelectWidget,
    )


class TemplateContentForm(forms.ModelForm):
    class Meta:
        model = TemplateContent
        fields = ("channel", "locale", "subject", "body", "body_html", "extra", "account",
                  "fallback_channel")

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
        stored = {str(pk): (channel, locale, None) for pk, channel, locale in
                  template.contents.values_list("pk", "channel", "locale")}
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
                    _("Template content with this channel (%(c)s) and locale (%(l)s) already "
                      "exists.") % {"c": channel, "l": locale or "-"})
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
        fields = ("code", "name", "category", "description", "params_schema", "sample_params",
                  "dedup_window_seconds", "daily_cap", "remind_after_seconds",
                  "remind_channel")

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
    list_display = ("code", "name", "category", "status_label", "version", "updated_at")
    list_filter = ("status", "category")
    search_fields = ("code", "name")
    readonly_fields = ("status", "version", "preview", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("code", "name", "category", "description", "status", "version")}),
        (_("Parameters"), {"fields": ("params_schema", "sample_params")}),
        (_("Preview with the sample params"), {"fields": ("preview",)}),
        (_("Policies"), {"fields": ("dedup_window_seconds", "daily_cap",
                                    "remind_after_seconds", "remind_channel")}),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )
    actions_detail = ["publish_action", "archive_action", "restore_action"]

    @display(description=_("status"), ordering="status", label=STATE_COLORS)
    def status_label(self, obj: MessageTemplate):
        return obj.status, obj.get_status_display()

    @display(description=_("rendered draft"))
    def preview(self, obj: MessageTemplate) -> str:
        if not obj.pk:
            return _("Save the template to preview it.")
        # One query: preview_template reads template.contents from this cache.
        prefetch_related_objects([obj], "contents")
        rows = []
        for content in obj.contents.all():
            title = content.channel + (f" / {content.locale}" if content.locale else "")
            try:
                out = preview_template(template=obj, params=None, channel=content.channel,
                                       locale=content.locale)
            except APIError as exc:
                rows.append((title, "text-red-600 dark:text-red-500", exc.message))
                continue
            text = "\n\n".join(part for part in (out["subject"], out["body"],
                                                 out["body_html"]) if part)
            rows.append((title, "", text))
        if not rows:
            return "-"
        return format_html_join(
            "", '<div class="mb-3"><div class="font-semibold">{}</div>'
                '<pre class="whitespace-pre-wrap {}">{}</pre></div>', rows)

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

    @action(description=_("Publish"), icon="publish", permissions=["transition"],
            dialog={"title": _("Publish this template?"),
                    "description": _("The current contents are compiled and frozen as a new "
                                     "version; new messages use it."),
                    "form_submit_text": _("Publish")})
    def publish_action(self, request: HttpRequest, form, object_id: str) -> HttpResponse:
        template = get_object_or_404(self, request, object_id)
        latest = template.version
        try:
            version = publish_template(template=template, by=request.user.get_username())
        except APIError as exc:
            report_error(request, exc)
        else:
            if version.version == latest:
                messages.info(request, _("Nothing changed since version %(v)s; it stays the "
                                         "published one.") % {"v": version.version})
            else:
                messages.success(request, _("Published version %(v)s.") % {"v": version.version})
                self.log_change(request, template, f"Published version {version.version}.")
        return finish_action(request, change_url(template))

    @action(description=_("Archive"), icon="archive", permissions=["transition"],
            dialog={"title": _("Archive this template?"),
                    "description": _("Messages using it are refused until it is restored "
                                     "and published again."),
                    "form_submit_text": _("Archive")})
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

    @action(description=_("Restore"), icon="unarchive", permissions=["transition"],
            dialog={"title": _("Restore this template?"),
                    "description": _("It comes back as a draft; publish it to use it again."),
                    "form_submit_text": _("Restore")})
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
    fields = ("template", "version", "category", "published_by", "created_at",
              "params_schema", "contents", "settings")
    readonly_fields = fields
