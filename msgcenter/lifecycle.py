"""The one way services start a single-object lifecycle transition."""

from __future__ import annotations

from typing import TypeVar

from django.db import models
from django_fsm import can_proceed

from .errors import APIError

M = TypeVar("M", bound=models.Model)


def lock_for_transition(instance: M, transition: str, *, noun: str, done: str) -> M:
    """`instance` re-read and locked (in the caller's transaction), checked to allow
    `transition`; otherwise 409 `invalid_transition` ("A task in state 'completed'
    cannot be cancelled.")."""
    locked = type(instance).objects.select_for_update().get(pk=instance.pk)
    method = getattr(locked, transition)
    if not can_proceed(method):
        state = getattr(locked, method._django_fsm.field.name)
        raise APIError(
            f"A {noun} in state '{state}' cannot be {done}.",
            code="invalid_transition",
            status_code=409,
            details={"state": state},
        )
    return locked
