"""HOW: channel accounts, delivery records (one per task x recipient x channel) and
the interactions that follow them. Tasks and recipients are referenced by string, never
imported: this app talks back to tasks_app through signals and ids."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition


class ChannelAccount(models.Model):
    channel = models.CharField(_("channel"), max_length=30, db_index=True)
    provider = models.CharField(_("provider"), max_length=40)
    name = models.CharField(_("name"), max_length=200)
    config = models.JSONField(_("config"), default=dict, blank=True)
    weight = models.PositiveIntegerField(_("weight"), default=1)
    rate_limit_per_sec = models.FloatField(_("rate limit (/s)"), null=True, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    sandbox = models.BooleanField(
        _("sandbox"), default=False, help_text=_("Log messages instead of sending them.")
    )
    # Circuit breaker: consecutive transient failures and the pause they caused.
    consecutive_failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    paused_until = models.DateTimeField(_("paused until"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["channel", "name"]
        verbose_name = _("channel account")
        verbose_name_plural = _("channel accounts")

    def __str__(self) -> str:
        return f"{self.name} ({self.channel}/{self.provider})"

    @property
    def circuit_open(self) -> bool:
        return bool(self.paused_until and self.paused_until > timezone.now())


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("Pending")
    DEFERRED = "deferred", _("Deferred")
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")


TERMINAL_DELIVERY_STATES = (
    DeliveryState.SENT,
    DeliveryState.DELIVERED,
    DeliveryState.FAILED,
    DeliveryState.SKIPPED,
)
OPEN_DELIVERY_STATES = (
    DeliveryState.PENDING,
    DeliveryState.DEFERRED,
    DeliveryState.QUEUED,
    DeliveryState.SENDING,
)


class SkipReason(models.TextChoices):
    OPTED_OUT = "opted_out", _("Opted out")
    DEDUPLICATED = "deduplicated", _("Deduplicated")
    FREQUENCY_CAPPED = "frequency_capped", _("Frequency capped")
    QUIET_HOURS_DROPPED = "quiet_hours_dropped", _("Dropped in quiet hours")
    NO_ADDRESS = "no_address", _("No address")
    CANCELLED = "cancelled", _("Cancelled")
    RECALLED = "recalled", _("Recalled")


# Skips that are the system doing its job: a task made only of these still `completed`.
POLICY_SKIP_REASONS = (
    SkipReason.OPTED_OUT,
    SkipReason.DEDUPLICATED,
    SkipReason.FREQUENCY_CAPPED,
    SkipReason.QUIET_HOURS_DROPPED,
)


class DeliveryKind(models.TextChoices):
    PRIMARY = "primary", _("Primary")
    FALLBACK = "fallback", _("Fallback")
    REMINDER = "reminder", _("Read reminder")
    TEST = "test", _("Test send")


class DeliveryRecordQuerySet(models.QuerySet):
    def due(self, now=None):
        """Deferred deliveries whose release time has come."""
        now = now or timezone.now()
        return self.filter(state=DeliveryState.DEFERRED, not_before__lte=now)

    def open(self):
        return self.filter(state__in=OPEN_DELIVERY_STATES)


class DeliveryRecord(FSMModelMixin, models.Model):
    """One delivery of one task to one recipient (or one group) on one channel.

    High-volume row: stage timestamps live on the row; state changes of many rows at
    once go through `channels_app.transitions.bulk_transition`, which derives the
    allowed source states from the transitions declared here."""

    task = models.ForeignKey(
        "tasks_app.MessageTask", on_delete=models.CASCADE, related_name="deliveries"
    )
    recipient = models.ForeignKey(
        "tasks_app.Recipient",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
        help_text=_("Empty for group channels, which post once per task."),
    )
    channel = models.CharField(_("channel"), max_length=30)
    kind = models.CharField(
        _("kind"), max_length=10, choices=DeliveryKind.choices, default=DeliveryKind.PRIMARY
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    account = models.ForeignKey(
        ChannelAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    provider = models.CharField(_("provider"), max_length=40, blank=True)
    address = models.CharField(_("address"), max_length=320, blank=True)
    mentions = models.JSONField(_("mentions"), default=list, blank=True)
    content = models.JSONField(_("rendered content"), default=dict, blank=True)
    state = FSMField(
        _("state"), default=DeliveryState.PENDING, choices=DeliveryState.choices, protected=True
    )
    reason = models.CharField(_("reason"), max_length=30, blank=True, choices=SkipReason.choices)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    error = models.TextField(_("last error"), blank=True)
    attempt_log = models.JSONField(_("attempts log"), default=list, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=200, blank=True)
    not_before = models.DateTimeField(_("not before"), null=True, blank=True)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    recalled_at = models.DateTimeField(_("recalled at"), null=True, blank=True)

    objects = DeliveryRecordQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["task", "state"], name="delivery_task_state"),
            models.Index(fields=["state", "not_before"], name="delivery_state_not_before"),
            models.Index(fields=["recipient", "created_at"], name="delivery_recipient_created"),
            models.Index(fields=["provider_message_id"], name="delivery_provider_msgid"),
            models.Index(fields=["created_at"], name="delivery_created"),
        ]
        ordering = ["-id"]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")

    def __str__(self) -> str:
        return f"#{self.pk} {self.channel} -> {self.address or '-'} [{self.state}]"

    # Transitions are exactly DESIGN §4. They have no side effects.
    @transition(field=state, source=DeliveryState.PENDING, target=DeliveryState.DEFERRED)
    def defer(self) -> None: ...

    @transition(
        field=state,
        source=[DeliveryState.PENDING, DeliveryState.DEFERRED],
        target=DeliveryState.QUEUED,
    )
    def enqueue(self) -> None: ...

    @transition(field=state, source=DeliveryState.QUEUED, target=DeliveryState.SENDING)
    def claim(self) -> None: ...

    @transition(field=state, source=DeliveryState.SENDING, target=DeliveryState.SENT)
    def mark_sent(self) -> None: ...

    @transition(field=state, source=DeliveryState.SENT, target=DeliveryState.DELIVERED)
    def mark_delivered(self) -> None: ...

    @transition(field=state, source=DeliveryState.SENDING, target=DeliveryState.QUEUED)
    def retry(self) -> None: ...

    @transition(
        field=state, source=[DeliveryState.SENDING, DeliveryState.SENT], target=DeliveryState.FAILED
    )
    def fail(self) -> None: ...

    @transition(
        field=state,
        source=[DeliveryState.PENDING, DeliveryState.DEFERRED, DeliveryState.QUEUED],
        target=DeliveryState.SKIPPED,
    )
    def skip(self) -> None: ...


class InteractionKind(models.TextChoices):
    DELIVERED = "delivered", _("Delivered")
    READ = "read", _("Read")
    CLICKED = "clicked", _("Clicked")
    REPLIED = "replied", _("Replied")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    BOUNCED = "bounced", _("Bounced")
    COMPLAINED = "complained", _("Complained")
    FAILED = "failed", _("Failed")
    RECALLED = "recalled", _("Recalled")


class Interaction(models.Model):
    delivery = models.ForeignKey(
        DeliveryRecord, on_delete=models.CASCADE, related_name="interactions"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=InteractionKind.choices)
    url = models.URLField(_("url"), max_length=2000, blank=True)
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    created_at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["delivery", "kind"], name="interaction_delivery_kind")]
        ordering = ["-created_at"]
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")

    def __str__(self) -> str:
        return f"{self.kind} on #{self.delivery_id}"


class DeliveryStat(models.Model):
    """Hourly rollup of deliveries for the dashboard (channels_app.rollup keeps it): per
    hour of creation, channel and template, how many reached each stage. A beat tick
    recomputes the recent hours, so the dashboard reads a few thousand rows, not millions."""

    hour = models.DateTimeField(_("hour"))
    channel = models.CharField(_("channel"), max_length=30)
    # The template of the delivery's task (an id, not a key: no link back to tasks).
    template_id = models.BigIntegerField(_("template id"))
    total = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    read = models.PositiveIntegerField(default=0)
    clicked = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "channel", "template_id"], name="uniq_delivery_stat"
            )
        ]
        indexes = [models.Index(fields=["template_id", "hour"], name="delivery_stat_template")]
        verbose_name = _("delivery statistic")
        verbose_name_plural = _("delivery statistics")

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.channel} t{self.template_id}"
