"""WHEN and TO WHOM: calling clients, recipients and their preferences, quiet hours,
message tasks with their lifecycle and event log, recurring sends."""

import hashlib
import secrets
import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

SCOPES = ("send", "manage")


class ApiClient(models.Model):
    """A calling service. Its keys are stored hashed (ApiKey)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    scopes = models.JSONField(_("scopes"), default=list)
    rate_limit_per_min = models.PositiveIntegerField(
        _("rate limit (/min)"), null=True, blank=True, help_text=_("Empty: unlimited.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")

    def __str__(self) -> str:
        return self.name

    # DRF treats the authenticated principal as request.user.
    is_authenticated = True
    is_anonymous = False

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class ApiKey(models.Model):
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="keys")
    prefix = models.CharField(_("prefix"), max_length=16, db_index=True)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked = models.BooleanField(_("revoked"), default=False)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.client})"

    @staticmethod
    def hash(raw: str) -> str:
        # Keys are 256-bit random strings, so a plain SHA-256 is safe and fast to look up.
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def generate(cls, client: ApiClient) -> tuple["ApiKey", str]:
        prefix = secrets.token_hex(4)
        raw = f"mc_{prefix}_{secrets.token_urlsafe(32)}"
        key = cls.objects.create(client=client, prefix=prefix, key_hash=cls.hash(raw))
        return key, raw


class Recipient(models.Model):
    external_id = models.CharField(_("external id"), max_length=200, unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("email"), max_length=320, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    locale = models.CharField(_("locale"), max_length=20, blank=True)
    timezone = models.CharField(_("timezone"), max_length=64, blank=True)
    addresses = models.JSONField(_("channel addresses"), default=dict, blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["external_id"]
        verbose_name = _("recipient")
        verbose_name_plural = _("recipients")

    def __str__(self) -> str:
        return self.external_id


class Preference(models.Model):
    """An opt-out. Empty category or channel means 'all'."""

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="preferences")
    category = models.CharField(_("category"), max_length=20, blank=True)
    channel = models.CharField(_("channel"), max_length=30, blank=True)
    opted_out = models.BooleanField(_("opted out"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "category", "channel"], name="uniq_preference"
            )
        ]
        verbose_name = _("preference")
        verbose_name_plural = _("preferences")

    def __str__(self) -> str:
        return f"{self.recipient}: {self.category or '*'}/{self.channel or '*'}"


class QuietAction(models.TextChoices):
    DEFER = "defer", _("Defer to the end of the window")
    DROP = "drop", _("Drop")


class QuietHours(models.Model):
    name = models.CharField(_("name"), max_length=100)
    start = models.TimeField(_("start"))
    end = models.TimeField(_("end"))
    timezone = models.CharField(_("timezone"), max_length=64, blank=True)
    categories = models.JSONField(_("categories"), default=list, blank=True)
    channels = models.JSONField(_("channels"), default=list, blank=True)
    action = models.CharField(
        _("action"), max_length=10, choices=QuietAction.choices, default=QuietAction.DEFER
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("quiet hours")
        verbose_name_plural = _("quiet hours")

    def __str__(self) -> str:
        return f"{self.name} {self.start:%H:%M}-{self.end:%H:%M}"


class TaskState(models.TextChoices):
    INITIALIZED = "initialized", _("Initialized")
    TASKED = "tasked", _("Tasked")
    SCHEDULED = "scheduled", _("Scheduled")
    PUSHING = "pushing", _("Pushing")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


TERMINAL_TASK_STATES = (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")


class MessageTask(FSMModelMixin, models.Model):
    """The unit a caller creates. Every transition writes a TaskEvent (see signals)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    template = models.ForeignKey(
        "templates_app.MessageTemplate", on_delete=models.PROTECT, related_name="tasks"
    )
    template_version = models.ForeignKey(
        "templates_app.TemplateVersion", on_delete=models.PROTECT, related_name="tasks"
    )
    client = models.ForeignKey(
        ApiClient, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    params = models.JSONField(_("params"), default=dict, blank=True)
    recipient_params = models.JSONField(
        _("per-recipient params"),
        default=dict,
        blank=True,
        help_text=_("external id -> params merged over the shared ones"),
    )
    channels = models.JSONField(_("channels"), default=list)
    audience = models.JSONField(_("audience"), default=dict, blank=True)
    priority = models.CharField(
        _("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, null=True, blank=True)
    request_hash = models.CharField(_("request hash"), max_length=64, blank=True)
    state = FSMField(
        _("state"), default=TaskState.INITIALIZED, choices=TaskState.choices, protected=True
    )
    recipient_count = models.PositiveIntegerField(_("recipients"), default=0)
    delivery_count = models.PositiveIntegerField(_("deliveries"), default=0)
    created_by = models.CharField(_("created by"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client", "idempotency_key"],
                name="uniq_task_client_idempotency_key",
                condition=models.Q(idempotency_key__isnull=False),
            )
        ]
        indexes = [
            models.Index(fields=["state", "send_at"], name="task_state_send_at"),
            models.Index(fields=["template", "created_at"], name="task_template_created"),
        ]
        ordering = ["-created_at"]
        verbose_name = _("message task")
        verbose_name_plural = _("message tasks")

    def __str__(self) -> str:
        return f"{self.template_id and self.template.code} {str(self.id)[:8]} [{self.state}]"

    # Transitions are exactly DESIGN §4; `by` and `note` end up in the TaskEvent row.
    @transition(field=state, source=TaskState.INITIALIZED, target=TaskState.TASKED)
    def standardize(self, by: str = "", note: str = "") -> None: ...

    @transition(field=state, source=TaskState.TASKED, target=TaskState.SCHEDULED)
    def schedule(self, by: str = "", note: str = "") -> None: ...

    @transition(field=state, source=TaskState.TASKED, target=TaskState.PUSHING)
    def start(self, by: str = "", note: str = "") -> None: ...

    @transition(field=state, source=TaskState.SCHEDULED, target=TaskState.PUSHING)
    def release(self, by: str = "", note: str = "") -> None: ...

    @transition(field=state, source=TaskState.PUSHING, target=TaskState.COMPLETED)
    def complete(self, by: str = "", note: str = "") -> None: ...

    @transition(field=state, source=TaskState.PUSHING, target=TaskState.FAILED)
    def fail(self, by: str = "", note: str = "") -> None: ...

    @transition(
        field=state,
        source=[TaskState.INITIALIZED, TaskState.TASKED, TaskState.SCHEDULED, TaskState.PUSHING],
        target=TaskState.CANCELLED,
    )
    def cancel(self, by: str = "", note: str = "") -> None: ...


class TaskEvent(models.Model):
    task = models.ForeignKey(MessageTask, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(_("from"), max_length=20)
    to_state = models.CharField(_("to"), max_length=20)
    at = models.DateTimeField(_("at"), default=timezone.now)
    by = models.CharField(_("by"), max_length=200, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("task event")
        verbose_name_plural = _("task events")

    def __str__(self) -> str:
        return f"{self.from_state} -> {self.to_state}"


class RecurringSend(models.Model):
    """A template sent to an audience on a crontab, kept in step with a
    django-celery-beat PeriodicTask. Each run creates a MessageTask."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    template = models.ForeignKey(
        "templates_app.MessageTemplate", on_delete=models.PROTECT, related_name="recurring_sends"
    )
    audience = models.JSONField(
        _("audience"),
        default=dict,
        help_text=_('{"recipients": [...]} or {"tag": "vip"} or {"all": true}'),
    )
    params = models.JSONField(_("params"), default=dict, blank=True)
    channels = models.JSONField(_("channels"), default=list, blank=True)
    minute = models.CharField(_("minute"), max_length=64, default="0")
    hour = models.CharField(_("hour"), max_length=64, default="*")
    day_of_week = models.CharField(_("day of week"), max_length=64, default="*")
    day_of_month = models.CharField(_("day of month"), max_length=64, default="*")
    month_of_year = models.CharField(_("month of year"), max_length=64, default="*")
    timezone = models.CharField(_("timezone"), max_length=64, default="UTC")
    enabled = models.BooleanField(_("enabled"), default=True)
    client = models.ForeignKey(
        ApiClient, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="recurring_send",
    )
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("recurring send")
        verbose_name_plural = _("recurring sends")

    def __str__(self) -> str:
        return self.name

    @property
    def crontab_expr(self) -> str:
        return (
            f"{self.minute} {self.hour} {self.day_of_month} {self.month_of_year} {self.day_of_week}"
        )


class ReminderState(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    SENT = "sent", _("Reminder created")
    READ = "read", _("Read in time")
    RECALLED = "recalled", _("Recalled")
    NO_ADDRESS = "no_address", _("No address on the channel")


class ReadReminder(models.Model):
    """A read reminder (阅读提醒, DESIGN §8) waiting for its time: if the in-app
    `delivery` is still unread at `due_at`, the beat tick creates a reminder delivery on
    `channel` (kind `reminder`, parent = the in-app delivery) and plans it."""

    delivery = models.OneToOneField(
        "channels_app.DeliveryRecord", on_delete=models.CASCADE, related_name="read_reminder"
    )
    channel = models.CharField(_("channel"), max_length=30)
    due_at = models.DateTimeField(_("due at"))
    state = models.CharField(
        _("state"), max_length=12, choices=ReminderState.choices, default=ReminderState.WAITING
    )
    reminder = models.ForeignKey(
        "channels_app.DeliveryRecord",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "due_at"], name="reminder_state_due")]
        ordering = ["due_at"]
        verbose_name = _("read reminder")
        verbose_name_plural = _("read reminders")

    def __str__(self) -> str:
        return f"remind #{self.delivery_id} via {self.channel} at {self.due_at:%Y-%m-%d %H:%M}"
