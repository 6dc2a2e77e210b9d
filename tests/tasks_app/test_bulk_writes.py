"""The fast write paths of the pipeline: COPY of a large audience's deliveries, and
`transition_rows` (per-row values and a state change in one statement)."""

from __future__ import annotations

import pytest

from channels_app.models import DeliveryRecord
from channels_app.sending import transition_rows
from tasks_app.models import Recipient
from tasks_app.services import COPY_THRESHOLD, send_message
from tests import factories


@pytest.fixture
def template(db):
    return factories.published_template(channels=("inapp", "email"))


def test_large_audience_rows_match_the_small_path(template):
    n = COPY_THRESHOLD + 10
    Recipient.objects.bulk_create(
        [
            Recipient(
                external_id=f"big-{i}", name=f"Big {i}", email=f"big{i}@x.test" if i % 2 else ""
            )
            for i in range(n)
        ]
    )
    big, _ = send_message(
        client=None,
        template="order_shipped",
        recipients=[f"big-{i}" for i in range(n)],
        params={"order_no": "1"},
    )
    small, _ = send_message(
        client=None,
        template="order_shipped",
        recipients=["big-1", "big-2"],
        params={"order_no": "1"},
    )

    fields = (
        "channel",
        "kind",
        "state",
        "reason",
        "address",
        "attempts",
        "mentions",
        "content",
        "attempt_log",
        "provider",
        "error",
        "account_id",
        "not_before",
    )

    def rows(task, external_ids):
        return {
            (d.recipient.external_id, d.channel): tuple(getattr(d, f) for f in fields)
            for d in DeliveryRecord.objects.filter(
                task=task, recipient__external_id__in=external_ids
            ).select_related("recipient")
        }

    assert DeliveryRecord.objects.filter(task=big).count() == 2 * n
    # Rows written by COPY equal those of bulk_create for the same recipients.
    assert rows(big, ["big-1", "big-2"]) == rows(small, ["big-1", "big-2"])
    assert rows(big, ["big-2"])[("big-2", "email")][2:4] == ("skipped", "no_address")
    created = set(DeliveryRecord.objects.filter(task=big).values_list("created_at", flat=True))
    assert created == {big.created_at}


def test_transition_rows_moves_only_rows_in_a_source_state(template):
    factories.recipients(3)
    task, _ = send_message(
        client=None,
        template="order_shipped",
        recipients=["u-1001", "u-1002", "u-1003"],
        params={"order_no": "1"},
        channels=["inapp"],
    )
    rows = list(DeliveryRecord.objects.filter(task=task).order_by("id"))
    DeliveryRecord.objects.filter(pk=rows[2].pk).update(state="skipped", reason="cancelled")
    for i, row in enumerate(rows):
        row.error = f"note {i}"
        row.attempt_log = [{"n": i}]

    moved = transition_rows(
        rows, ["error", "attempt_log"], DeliveryRecord.enqueue, DeliveryRecord.claim, attempts=1
    )

    assert moved == 2
    after = list(DeliveryRecord.objects.filter(task=task).order_by("id"))
    assert [(d.state, d.error, d.attempt_log, d.attempts) for d in after] == [
        ("sending", "note 0", [{"n": 0}], 1),
        ("sending", "note 1", [{"n": 1}], 1),
        ("skipped", "", [], 0),
    ]


def test_transition_rows_refuses_a_chain_the_lifecycle_does_not_allow(template):
    with pytest.raises(ValueError):
        transition_rows(
            [DeliveryRecord(pk=1)], [], DeliveryRecord.enqueue, DeliveryRecord.mark_sent
        )


def test_finish_tasks_if_done_settles_many_tasks_at_once(template):
    from tasks_app.models import MessageTask
    from tasks_app.services import finish_tasks_if_done

    factories.recipients(1)
    tasks = []
    for _ in range(4):
        task, _ = send_message(
            client=None,
            template="order_shipped",
            recipients=["u-1001"],
            params={"order_no": "1"},
            channels=["inapp"],
        )
        tasks.append(task)
    for task in tasks[:3]:
        task.start(by="test")
        task.save(update_fields=["state"])
    done, failed, still_open, not_started = tasks
    DeliveryRecord.objects.filter(task=done).update(state="delivered")
    DeliveryRecord.objects.filter(task=failed).update(state="failed")
    DeliveryRecord.objects.filter(task=not_started).update(state="delivered")

    finished = finish_tasks_if_done([t.pk for t in tasks])

    assert {t.pk for t in finished} == {done.pk, failed.pk}
    states = dict(MessageTask.objects.values_list("pk", "state"))
    assert [states[t.pk] for t in tasks] == ["completed", "failed", "pushing", "tasked"]
    assert finish_tasks_if_done([t.pk for t in tasks]) == []
    events = list(done.events.values_list("to_state", flat=True))
    assert events == ["tasked", "pushing", "completed"]
