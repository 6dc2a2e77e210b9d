"""Serializer fields shared by the API apps: strict types, time zones, clock times."""

from __future__ import annotations

import re
import zoneinfo
from datetime import time
from functools import lru_cache
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_timezone(name: str) -> bool:
    """True for an IANA zone name this machine knows (what zoneinfo.ZoneInfo will load)."""
    return name in _zones()


class TimezoneField(StrictCharField):
    """An IANA time zone name such as `Asia/Shanghai` (blank allowed where declared)."""

    default_error_messages = {
        "bad_zone": "'{value}' is not a known time zone (e.g. Asia/Shanghai)."
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value and not is_timezone(value):
            self.fail("bad_zone", value=value[:64])
        return value


_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@extend_schema_field({"type": "string", "pattern": _CLOCK.pattern, "example": "22:00"})
class ClockTimeField(serializers.Field):
    """A wall-clock time written "HH:MM" (24 h)."""

    default_error_messages = {"invalid": "Use a time written HH:MM, e.g. 22:00."}

    def to_internal_value(self, data: Any) -> time:
        match = _CLOCK.match(data) if isinstance(data, str) else None
        if match is None:
            self.fail("invalid")
        return time(int(match[1]), int(match[2]))

    def to_representation(self, value: time) -> str:
        return value.strftime("%H:%M")


_ID = re.compile(r"\d{1,18}", re.ASCII)


def parse_id(value: str) -> int | None:
    """The integer id in a URL segment, or None when it cannot be one (so that a lookup
    answers 404 instead of failing on a non-number or a bigint overflow)."""
    return int(value) if _ID.fullmatch(value) else None
