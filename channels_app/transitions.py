"""Bulk state changes that honour the transitions declared on the models.

`bulk_transition(qs, DeliveryRecord.skip, reason="cancelled")` issues one
`UPDATE ... SET state = <target> WHERE state IN (<sources>) AND ...`: the allowed
sources come from the django-fsm transition itself, so the bulk path can never do
what the single-object lifecycle refuses."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet


def transition_sources(method: Any) -> list[str]:
    meta = method._django_fsm
    return [str(s) for s in meta.transitions.keys()]


def transition_target(method: Any) -> str:
    meta = method._django_fsm
    targets = {str(t.target) for t in meta.transitions.values()}
    if len(targets) != 1:
        raise ValueError(f"{method.__name__} has several targets: {targets}")
    return targets.pop()


def bulk_transition(qs: QuerySet, method: Any, **fields: Any) -> int:
    """Move every row of `qs` allowed by `method` to its target; returns the row count."""
    field_name = (
        method._django_fsm.field
        if isinstance(method._django_fsm.field, str)
        else method._django_fsm.field.name
    )
    return qs.filter(**{f"{field_name}__in": transition_sources(method)}).update(
        **{field_name: transition_target(method)}, **fields
    )
