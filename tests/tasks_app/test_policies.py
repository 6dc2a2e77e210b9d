"""Planning policies in-process against PostgreSQL and Redis, with a controlled clock:
opt-outs, quiet hours (defer/drop, release at the window's end), dedup and daily caps
(counted only for real sends, reset at the recipient's midnight)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine

from channels_app.models import DeliveryRecord
from channels_app.sending import send_chunk
from tasks_app import pipeline, scheduler
from tasks_app.models import MessageTask, Preference, QuietHours
from tasks_app.services import send_message, upsert_recipient
from tests import factories

pytestmark = pytest.mark.django_db


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def no_default_quiet(settings):
    settings.MSGCENTER = {**settings.MSGCENTER, "DEFAULT_QUIET_HOURS": "off"}


@pytest.fixture
def people(db):
    shanghai, _ = upsert_recipient(
        external_id="sh", name="Shanghai", email="sh@example.com", timezone="Asia/Shanghai"
    )
    london, _ = upsert_recipient(
        external_id="ld", name="London", email="ld@example.com", timezone="Europe/London"
    )
    return shanghai, london


def message(
    template: str, recipients, order_no: str = "A1", channels=("email",), **kw
) -> MessageTask:
    """A message on a channel that queues for a sender (in-app deliveries are stored,
    so delivered, by planning itself)."""
    task, _ = send_message(
        client=None,
        template=template,
        recipients=list(recipients),
        params={"order_no": order_no},
        channels=list(channels),
        **kw,
    )
    return task


def plan(task: MessageTask) -> None:
    pipeline.plan_task(str(task.pk))


def send_queued() -> None:
    """What the channel workers would do with every queued chunk."""
    by_channel = defaultdict(list)
    for pk, channel in DeliveryRecord.objects.filter(state="queued").values_list("id", "channel"):
        by_channel[channel].append(pk)
    for channel, ids in by_channel.items():
        send_chunk(channel, ids)


def outcome(task: MessageTask) -> dict[str, tuple[str, str]]:
    return {
        f"{d.recipient.external_id}/{d.channel}": (d.state, d.reason)
        for d in DeliveryRecord.objects.filter(task=task).select_related("recipient")
    }


def one(task: MessageTask) -> DeliveryRecord:
    return DeliveryRecord.objects.get(task=task)


# --- opt-outs ------------------------------------------------------------------------


def test_opt_outs_by_category_and_channel_and_verification_ignores_them(people):
    factories.published_template("news", channels=("inapp", "email"), category="notification")
    factories.published_template("otp", channels=("inapp", "email"), category="verification")
    shanghai, london = people
    Preference.objects.create(recipient=shanghai, category="notification", channel="email")
    Preference.objects.create(recipient=london, category="", channel="")  # everything
    task = message("news", ["sh", "ld"], channels=("inapp", "email"))
    plan(task)
    assert outcome(task) == {
        "sh/inapp": ("delivered", ""),
        "sh/email": ("skipped", "opted_out"),
        "ld/inapp": ("skipped", "opted_out"),
        "ld/email": ("skipped", "opted_out"),
    }
    otp = message("otp", ["sh", "ld"], channels=("inapp", "email"))
    plan(otp)
    assert {s for s, _ in outcome(otp).values()} == {"queued", "delivered"}


# --- quiet hours ------------------------------------------------------------------------


def test_quiet_hours_defer_per_recipient_timezone_then_release_at_window_end(people):
    factories.published_template("promo", channels=("email",), category="marketing")
    QuietHours.objects.create(
        name="night", start=time(22), end=time(8), categories=["marketing"], action="defer"
    )
    night_in_shanghai = utc(2026, 5, 10, 14, 30)  # 22:30 Shanghai, 15:30 London
    with time_machine.travel(night_in_shanghai, tick=False):
        task = message("promo", ["sh", "ld"])
        plan(task)
    assert outcome(task) == {"sh/email": ("deferred", ""), "ld/email": ("queued", "")}
    deferred = DeliveryRecord.objects.get(task=task, recipient__external_id="sh")
    assert deferred.not_before == utc(2026, 5, 11, 0, 0)  # 08:00 in Shanghai
    assert MessageTask.objects.get(pk=task.pk).state == "pushing"

    with time_machine.travel(utc(2026, 5, 10, 23, 59, 59), tick=False):
        assert scheduler.release_due()["deliveries"] == 0
    with time_machine.travel(utc(2026, 5, 11, 0, 0), tick=False):
        counts = scheduler.release_due()
        assert counts["deliveries"] == 1 and counts["deliveries_queued"] == 1
        send_queued()
    assert outcome(task) == {"sh/email": ("sent", ""), "ld/email": ("sent", "")}
    assert MessageTask.objects.get(pk=task.pk).state == "completed"


def test_quiet_hours_drop_skips_and_the_task_still_completes(people):
    factories.published_template("promo", channels=("email",), category="marketing")
    QuietHours.objects.create(
        name="night", start=time(22), end=time(8), categories=["marketing"], action="drop"
    )
    with time_machine.travel(utc(2026, 5, 10, 14, 30), tick=False):
        task = message("promo", ["sh"])
        plan(task)
    assert outcome(task) == {"sh/email": ("skipped", "quiet_hours_dropped")}
    assert MessageTask.objects.get(pk=task.pk).state == "completed"


def test_default_quiet_hours_apply_until_an_operator_makes_a_policy(people):
    factories.published_template("promo", channels=("email",), category="marketing")
    night = utc(2026, 5, 10, 15, 0)  # 23:00 in Shanghai
    with time_machine.travel(night, tick=False):
        task = message("promo", ["sh"], order_no="D1")
        plan(task)
        assert one(task).state == "deferred"  # settings default: marketing 22:00-08:00
        # A policy made (even disabled) replaces the default.
        QuietHours.objects.create(name="off", start=time(1), end=time(2), enabled=False)
        task = message("promo", ["sh"], order_no="D2")
        plan(task)
        assert one(task).state == "queued"


def test_alert_bypasses_quiet_hours_unless_named(people):
    factories.published_template("ops", channels=("email",), category="alert")
    QuietHours.objects.create(name="all night", start=time(22), end=time(8))
    with time_machine.travel(utc(2026, 5, 10, 15, 0), tick=False):
        task = message("ops", ["sh"], order_no="X1")
        plan(task)
        assert one(task).state == "queued"
        QuietHours.objects.create(
            name="alerts too", start=time(22), end=time(8), categories=["alert"]
        )
        task = message("ops", ["sh"], order_no="X2")
        plan(task)
        assert one(task).state == "deferred"


def test_release_runs_the_policies_again(people):
    """Opted out during the night: the deferred message is skipped at release."""
    factories.published_template("promo", channels=("email",), category="marketing")
    shanghai, _ = people
    with time_machine.travel(utc(2026, 5, 10, 15, 0), tick=False):
        task = message("promo", ["sh"])
        plan(task)
    Preference.objects.create(recipient=shanghai, category="marketing")
    with time_machine.travel(utc(2026, 5, 11, 0, 0, 1), tick=False):
        scheduler.release_due()
    assert outcome(task) == {"sh/email": ("skipped", "opted_out")}
    assert MessageTask.objects.get(pk=task.pk).state == "pushing"  # completion is the worker's


# --- dedup -------------------------------------------------------------------------------


def test_dedup_window_counts_only_sends_that_went_out(people, no_default_quiet):
    factories.published_template(
        "news", channels=("email",), category="notification", dedup_window_seconds=600
    )
    start = utc(2026, 5, 10, 3, 0)
    with time_machine.travel(start, tick=False):
        first = message("news", ["sh"])
        plan(first)
        # Planned but not sent yet: not counted, so an identical second one is planned too.
        second = message("news", ["sh"])
        plan(second)
        assert one(second).state == "queued"
        send_queued()
        assert one(first).state == "sent" and one(second).state == "sent"
        third = message("news", ["sh"])
        plan(third)
        assert (one(third).state, one(third).reason) == ("skipped", "deduplicated")
        other = message("news", ["sh"], order_no="B2")  # other content
        plan(other)
        assert one(other).state == "queued"
        elsewhere = message("news", ["ld"])  # other recipient
        plan(elsewhere)
        assert one(elsewhere).state == "queued"
    with time_machine.travel(start + timedelta(seconds=599), tick=False):
        late = message("news", ["sh"])
        plan(late)
        assert one(late).reason == "deduplicated"
    with time_machine.travel(start + timedelta(seconds=601), tick=False):
        later = message("news", ["sh"])
        plan(later)
        assert one(later).state == "queued"


def test_failed_send_does_not_count_for_dedup(people, no_default_quiet, smtp_server):
    factories.published_template("news", channels=("email",), category="notification")
    factories.smtp_account(smtp_server)
    smtp_server.reject_addresses.add("sh@example.com")
    first = message("news", ["sh"], channels=("email",))
    plan(first)
    send_queued()
    assert one(first).state == "failed"
    smtp_server.reject_addresses.clear()
    again = message("news", ["sh"], channels=("email",))
    plan(again)
    send_queued()
    assert one(again).state == "sent"
    third = message("news", ["sh"], channels=("email",))
    plan(third)
    assert one(third).reason == "deduplicated"  # the default window: 300 s
    assert len(smtp_server.messages) == 1


def test_dedup_ignores_the_per_delivery_unsubscribe_link(people, no_default_quiet):
    from templates_app.services import create_template, publish_template

    t = create_template(
        code="digest",
        name="Digest",
        category="notification",
        contents=[{"channel": "email", "subject": "Digest", "body": "Stop: {{ unsubscribe_url }}"}],
    )
    publish_template(template=t)
    first = message("digest", ["sh"])
    plan(first)
    send_queued()
    assert "/u/" in one(first).content["body"]
    second = message("digest", ["sh"])
    plan(second)
    assert one(second).reason == "deduplicated"


# --- frequency caps ---------------------------------------------------------------------


def test_category_cap_resets_at_the_recipients_midnight(people, no_default_quiet):
    factories.published_template("promo", channels=("email",), category="marketing")
    # 10:00 in Shanghai (UTC+8); the default marketing cap is 3 a day.
    with time_machine.travel(utc(2026, 5, 10, 2, 0), tick=False):
        tasks = [message("promo", ["sh"], order_no=f"P{i}") for i in range(3)]
        for task in tasks:
            plan(task)
        send_queued()
        assert [one(t).state for t in tasks] == ["sent"] * 3
        fourth = message("promo", ["sh"], order_no="P4")
        plan(fourth)
        assert (one(fourth).state, one(fourth).reason) == ("skipped", "frequency_capped")
        london = message("promo", ["ld"], order_no="P4")  # someone else: own counter
        plan(london)
        assert one(london).state == "queued"
    # 23:59:59 in Shanghai is still the same day there (though already May 10 15:59 UTC).
    with time_machine.travel(utc(2026, 5, 10, 15, 59, 59), tick=False):
        task = message("promo", ["sh"], order_no="P5")
        plan(task)
        assert one(task).reason == "frequency_capped"
    # Midnight in Shanghai, 16:00 UTC: a new day for this recipient.
    with time_machine.travel(utc(2026, 5, 10, 16, 0), tick=False):
        task = message("promo", ["sh"], order_no="P6")
        plan(task)
        assert one(task).state == "queued"


def test_cap_counts_within_one_batch_and_only_real_sends(people, no_default_quiet):
    factories.published_template("promo", channels=("email",), category="marketing")
    with time_machine.travel(utc(2026, 5, 10, 2, 0), tick=False):
        planned = [message("promo", ["sh"], order_no=f"Q{i}") for i in range(4)]
        for task in planned:
            plan(task)
        # Nothing went out yet: four planned (the cap counts sends, not plans).
        assert [one(t).state for t in planned] == ["queued"] * 4
        send_queued()
        extra = message("promo", ["sh"], order_no="Q9")
        plan(extra)
        assert one(extra).reason == "frequency_capped"


def test_template_cap_overrides_the_category_cap(people, no_default_quiet):
    factories.published_template("flash", channels=("email",), category="marketing", daily_cap=1)
    factories.published_template("news", channels=("email",), category="notification", daily_cap=2)
    with time_machine.travel(utc(2026, 5, 10, 2, 0), tick=False):
        first = message("flash", ["sh"], order_no="F1")
        plan(first)
        send_queued()
        second = message("flash", ["sh"], order_no="F2")
        plan(second)
        assert one(second).reason == "frequency_capped"
        # A notification template with a cap of its own: 2 a day.
        news = [message("news", ["sh"], order_no=f"N{i}") for i in range(3)]
        for task in news:
            plan(task)
            send_queued()
        assert [one(t).state for t in news] == ["sent", "sent", "skipped"]
