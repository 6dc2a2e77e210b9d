"""Every allowed and every refused transition of the three lifecycles (DESIGN §4).

The expected tables are written out here, not derived from the models, so that a
transition added, dropped or re-targeted in a model fails this file."""

from __future__ import annotations

import pytest
from django_fsm import TransitionNotAllowed

from channels_app.models import DeliveryRecord, DeliveryState
from tasks_app.models import MessageTask, TaskEvent, TaskState
from templates_app.models import MessageTemplate, TemplateStatus
from templates_app.services import create_template, publish_template


def _declared(model, field: str) -> dict[str, tuple[list[str], str]]:
    """The transitions a model declares, in the shape of the tables below."""
    declared: dict[str, tuple[set[str], str]] = {}
    for t in model._meta.get_field(field).get_all_transitions(model):
        sources, _ = declared.setdefault(t.name, (set(), t.target))
        sources.add(t.source)
    return {name: (sorted(src), target) for name, (src, target) in declared.items()}


def _sorted(table):
    return {name: (sorted(src), target) for name, (src, target) in table.items()}


def _table(transitions: dict[str, tuple[list[str], str]], states: list[str]):
    """(state, transition, target or None when refused) for every pair."""
    return [
        (state, name, target if state in sources else None)
        for name, (sources, target) in transitions.items()
        for state in states
    ]


# --- templates: draft -> published -> archived -> (restore) draft ----------------------

TEMPLATE_TRANSITIONS = {
    "publish": (["draft", "published"], "published"),
    "archive": (["draft", "published"], "archived"),
    "restore": (["archived"], "draft"),
}
TEMPLATE_STATES = ["draft", "published", "archived"]


def test_template_table_covers_every_state_and_transition():
    assert sorted(TEMPLATE_STATES) == sorted(TemplateStatus.values)
    assert _declared(MessageTemplate, "status") == _sorted(TEMPLATE_TRANSITIONS)


@pytest.mark.parametrize("state,transition,target", _table(TEMPLATE_TRANSITIONS, TEMPLATE_STATES))
def test_template_transition(db, state, transition, target):
    template = MessageTemplate.objects.create(code="t", name="T", status=state)
    if target is None:
        with pytest.raises(TransitionNotAllowed):
            getattr(template, transition)()
        assert template.status == state
        return
    getattr(template, transition)()
    template.save()
    template.refresh_from_db()
    assert template.status == target


# --- tasks ---------------------------------------------------------------------------

TASK_TRANSITIONS = {
    "standardize": (["initialized"], "tasked"),
    "schedule": (["tasked"], "scheduled"),
    "start": (["tasked"], "pushing"),
    "release": (["scheduled"], "pushing"),
    "complete": (["pushing"], "completed"),
    "fail": (["pushing"], "failed"),
    "cancel": (["initialized", "tasked", "scheduled", "pushing"], "cancelled"),
}
TASK_STATES = ["initialized", "tasked", "scheduled", "pushing", "completed", "failed", "cancelled"]


@pytest.fixture
def version(db):
    template = create_template(
        code="lifecycle", name="Lifecycle", contents=[{"channel": "inapp", "body": "hi"}]
    )
    return publish_template(template=template)


def test_task_table_covers_every_state_and_transition():
    assert sorted(TASK_STATES) == sorted(TaskState.values)
    assert _declared(MessageTask, "state") == _sorted(TASK_TRANSITIONS)


@pytest.mark.parametrize("state,transition,target", _table(TASK_TRANSITIONS, TASK_STATES))
def test_task_transition_and_its_event(version, state, transition, target):
    task = MessageTask.objects.create(
        template=version.template, template_version=version, state=state
    )
    if target is None:
        with pytest.raises(TransitionNotAllowed):
            getattr(task, transition)(by="tests", note="refused")
        assert task.state == state
        assert not TaskEvent.objects.filter(task=task).exists()
        return
    getattr(task, transition)(by="ops@example.com", note=f"{transition} it")
    task.save()
    task.refresh_from_db()
    assert task.state == target
    events = list(
        TaskEvent.objects.filter(task=task).values_list("from_state", "to_state", "by", "note")
    )
    assert events == [(state, target, "ops@example.com", f"{transition} it")]


def test_task_path_through_schedule_writes_one_event_per_step(version):
    task = MessageTask.objects.create(template=version.template, template_version=version)
    for step in ("standardize", "schedule", "release", "complete"):
        getattr(task, step)()
        task.save()
    assert list(task.events.values_list("from_state", "to_state")) == [
        ("initialized", "tasked"),
        ("tasked", "scheduled"),
        ("scheduled", "pushing"),
        ("pushing", "completed"),
    ]


def test_task_state_cannot_be_assigned_directly(version):
    task = MessageTask.objects.create(template=version.template, template_version=version)
    with pytest.raises(AttributeError):
        task.state = TaskState.COMPLETED


# --- deliveries ----------------------------------------------------------------------

DELIVERY_TRANSITIONS = {
    "defer": (["pending"], "deferred"),
    "enqueue": (["pending", "deferred"], "queued"),
    "claim": (["queued"], "sending"),
    "mark_sent": (["sending"], "sent"),
    "mark_delivered": (["sent"], "delivered"),
    "retry": (["sending"], "queued"),
    "fail": (["sending", "sent"], "failed"),
    "skip": (["pending", "deferred", "queued"], "skipped"),
}
DELIVERY_STATES = [
    "pending",
    "deferred",
    "queued",
    "sending",
    "sent",
    "delivered",
    "failed",
    "skipped",
]


def test_delivery_table_covers_every_state_and_transition():
    assert sorted(DELIVERY_STATES) == sorted(DeliveryState.values)
    assert _declared(DeliveryRecord, "state") == _sorted(DELIVERY_TRANSITIONS)


@pytest.mark.parametrize("state,transition,target", _table(DELIVERY_TRANSITIONS, DELIVERY_STATES))
def test_delivery_transition(version, state, transition, target):
    task = MessageTask.objects.create(template=version.template, template_version=version)
    delivery = DeliveryRecord.objects.create(task=task, channel="inapp", state=state)
    if target is None:
        with pytest.raises(TransitionNotAllowed):
            getattr(delivery, transition)()
        assert delivery.state == state
        return
    getattr(delivery, transition)()
    delivery.save()
    delivery.refresh_from_db()
    assert delivery.state == target


def test_delivery_state_cannot_be_assigned_directly(version):
    task = MessageTask.objects.create(template=version.template, template_version=version)
    delivery = DeliveryRecord.objects.create(task=task, channel="inapp")
    with pytest.raises(AttributeError):
        delivery.state = DeliveryState.SENT
