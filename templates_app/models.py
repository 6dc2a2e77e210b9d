"""WHAT to say: templates, their per-channel contents and frozen versions."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition


class Category(models.TextChoices):
    NOTIFICATION = "notification", _("Notification")
    MARKETING = "marketing", _("Marketing")
    VERIFICATION = "verification", _("Verification")
    ALERT = "alert", _("Alert")


class TemplateStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    ARCHIVED = "archived", _("Archived")


class MessageTemplate(FSMModelMixin, models.Model):
    code = models.SlugField(_("code"), max_length=100, unique=True)
    name = models.CharField(_("name"), max_length=200)
    category = models.CharField(
        _("category"), max_length=20, choices=Category.choices, default=Category.NOTIFICATION
    )
    description = models.TextField(_("description"), blank=True)
    params_schema = models.JSONField(_("params schema"), default=dict, blank=True)
    sample_params = models.JSONField(_("sample params"), default=dict, blank=True)
    status = FSMField(
        _("status"), default=TemplateStatus.DRAFT, choices=TemplateStatus.choices, protected=True
    )
    # Latest published version number; null until the first publish.
    version = models.PositiveIntegerField(_("version"), null=True, blank=True)
    # Policies (None = the defaults in settings).
    dedup_window_seconds = models.PositiveIntegerField(_("dedup window (s)"), null=True, blank=True)
    daily_cap = models.PositiveIntegerField(_("daily cap per recipient"), null=True, blank=True)
    remind_after_seconds = models.PositiveIntegerField(
        _("read reminder after (s)"), null=True, blank=True
    )
    remind_channel = models.CharField(_("read reminder channel"), max_length=30, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @transition(
        field=status,
        source=[TemplateStatus.DRAFT, TemplateStatus.PUBLISHED],
        target=TemplateStatus.PUBLISHED,
    )
    def publish(self) -> None:
        """Freeze the current draft as a new version (side effects live in services)."""

    @transition(
        field=status,
        source=[TemplateStatus.PUBLISHED, TemplateStatus.DRAFT],
        target=TemplateStatus.ARCHIVED,
    )
    def archive(self) -> None:
        """Stop accepting new messages for this template."""

    @transition(field=status, source=TemplateStatus.ARCHIVED, target=TemplateStatus.DRAFT)
    def restore(self) -> None:
        """Bring an archived template back as a draft."""


class TemplateContent(models.Model):
    """The draft text of a template for one channel (and optionally one locale)."""

    template = models.ForeignKey(MessageTemplate, on_delete=models.CASCADE, related_name="contents")
    channel = models.CharField(_("channel"), max_length=30)
    locale = models.CharField(_("locale"), max_length=20, blank=True, default="")
    subject = models.TextField(_("subject"), blank=True)
    body = models.TextField(_("body"), blank=True)
    body_html = models.TextField(_("HTML body"), blank=True)
    extra = models.JSONField(_("channel specifics"), default=dict, blank=True)
    account = models.ForeignKey(
        "channels_app.ChannelAccount",
        verbose_name=_("pinned account"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    fallback_channel = models.CharField(_("fallback channel"), max_length=30, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["template", "channel", "locale"], name="uniq_content_channel_locale"
            )
        ]
        ordering = ["channel", "locale"]
        verbose_name = _("template content")
        verbose_name_plural = _("template contents")

    def __str__(self) -> str:
        return f"{self.template.code}/{self.channel}{'/' + self.locale if self.locale else ''}"

    def as_snapshot(self) -> dict:
        return {
            "channel": self.channel,
            "locale": self.locale,
            "subject": self.subject,
            "body": self.body,
            "body_html": self.body_html,
            "extra": self.extra,
            "account": self.account_id,
            "fallback_channel": self.fallback_channel,
        }


class TemplateVersion(models.Model):
    """An immutable snapshot of a template at publish time. Tasks point at one."""

    template = models.ForeignKey(MessageTemplate, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField(_("version"))
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    params_schema = models.JSONField(_("params schema"), default=dict)
    contents = models.JSONField(_("contents"), default=list)
    settings = models.JSONField(_("policies"), default=dict)
    published_by = models.CharField(_("published by"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("published at"), auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["template", "version"], name="uniq_template_version")
        ]
        ordering = ["template", "-version"]
        verbose_name = _("template version")
        verbose_name_plural = _("template versions")

    def __str__(self) -> str:
        return f"{self.template.code} v{self.version}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValidationError("A published template version is immutable.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("A published template version cannot be deleted.")

    def content_for(self, channel: str, locale: str = "") -> dict | None:
        """The content for a channel, preferring the exact locale, then its language, then ''."""
        candidates = [c for c in self.contents if c["channel"] == channel]
        if not candidates:
            return None
        if locale:
            lang = locale.split("-")[0].lower()
            for wanted in (locale.lower(), lang):
                for c in candidates:
                    if c["locale"].lower() == wanted:
                        return c
        for c in candidates:
            if not c["locale"]:
                return c
        return candidates[0]

    @property
    def channels(self) -> list[str]:
        seen: list[str] = []
        for c in self.contents:
            if c["channel"] not in seen:
                seen.append(c["channel"])
        return seen
