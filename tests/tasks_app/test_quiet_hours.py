"""Quiet hours as pure functions of (window, zone, category, channel, now)."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from tasks_app.quiet_hours import Window, combine, evaluate, first_instant, in_window, zone

NIGHT = Window(start=time(22), end=time(8), categories=("marketing",))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def check(
    window: Window, tz: str, now: datetime, category: str = "marketing", channel: str = "email"
):
    return evaluate(window, recipient_tz=tz, category=category, channel=channel, now=now)


@pytest.mark.parametrize(
    ("clock", "inside"),
    [
        (time(21, 59), False),
        (time(22, 0), True),
        (time(23, 59), True),
        (time(0, 0), True),
        (time(7, 59), True),
        (time(8, 0), False),
        (time(12, 0), False),
    ],
)
def test_window_across_midnight(clock, inside):
    assert in_window(clock, time(22), time(8)) is inside


@pytest.mark.parametrize(
    ("clock", "inside"),
    [(time(11, 59), False), (time(12, 0), True), (time(13, 59), True), (time(14, 0), False)],
)
def test_window_within_a_day(clock, inside):
    assert in_window(clock, time(12), time(14)) is inside


def test_evening_defers_to_next_morning_and_after_midnight_to_this_morning():
    # 23:30 in Shanghai (UTC+8) -> 08:00 the next local day.
    out = check(NIGHT, "Asia/Shanghai", utc(2026, 5, 10, 15, 30))
    assert out.action == "defer" and out.until == utc(2026, 5, 11, 0, 0)
    # 02:00 in Shanghai -> 08:00 the same local day.
    out = check(NIGHT, "Asia/Shanghai", utc(2026, 5, 10, 18, 0))
    assert out.until == utc(2026, 5, 11, 0, 0)
    assert check(NIGHT, "Asia/Shanghai", utc(2026, 5, 11, 0, 0)) is None  # 08:00 sharp


def test_two_recipient_timezones_at_the_same_instant():
    now = utc(2026, 5, 10, 14, 30)  # 22:30 in Shanghai, 15:30 in London, 07:30 in Los Angeles
    shanghai = check(NIGHT, "Asia/Shanghai", now)
    assert shanghai.until == utc(2026, 5, 11, 0, 0)
    assert check(NIGHT, "Europe/London", now) is None
    la = check(NIGHT, "America/Los_Angeles", now)
    assert la.until == utc(2026, 5, 10, 15, 0)  # 08:00 PDT (UTC-7), half an hour later


def test_spring_forward_night_is_an_hour_shorter():
    # New York, 2026-03-08: clocks jump 02:00 EST -> 03:00 EDT.
    now = utc(2026, 3, 8, 5, 0)  # 00:00 EST
    out = check(NIGHT, "America/New_York", now)
    # 08:00 EDT is 12:00 UTC: 7 hours later, not the naive 8.
    assert out.until == utc(2026, 3, 8, 12, 0)


def test_fall_back_night_is_an_hour_longer():
    # New York, 2026-11-01: clocks fall back 02:00 EDT -> 01:00 EST.
    now = utc(2026, 11, 1, 3, 0)  # 23:00 EDT on Oct 31
    out = check(NIGHT, "America/New_York", now)
    assert out.until == utc(2026, 11, 1, 13, 0)  # 08:00 EST: 10 hours later
    # During the repeated hour (01:30 EST, second time round) it is still night.
    assert check(NIGHT, "America/New_York", utc(2026, 11, 1, 6, 30)).until == utc(
        2026, 11, 1, 13, 0
    )


def test_window_ending_inside_a_dst_gap_ends_when_the_clock_jumps():
    tz = zone("America/New_York")
    # 02:30 does not exist on 2026-03-08: the first instant showing >= 02:30 is 03:00 EDT.
    assert first_instant(datetime(2026, 3, 8).date(), time(2, 30), tz) == utc(2026, 3, 8, 7, 0)
    # 01:30 happens twice on 2026-11-01: the first one (EDT) counts.
    assert first_instant(datetime(2026, 11, 1).date(), time(1, 30), tz) == utc(2026, 11, 1, 5, 30)
    early = Window(start=time(0), end=time(2, 30), categories=("marketing",))
    assert check(early, "America/New_York", utc(2026, 3, 8, 6, 0)).until == utc(2026, 3, 8, 7, 0)


def test_drop_instead_of_defer():
    drop = Window(start=time(22), end=time(8), categories=("marketing",), action="drop")
    out = check(drop, "Asia/Shanghai", utc(2026, 5, 10, 15, 0))
    assert out.action == "drop" and out.until is None


def test_verification_and_alert_bypass_unless_named():
    everything = Window(start=time(22), end=time(8))  # no categories: all but the bypassing
    night = utc(2026, 5, 10, 15, 0)  # 23:00 in Shanghai
    assert check(everything, "Asia/Shanghai", night, category="notification") is not None
    assert check(everything, "Asia/Shanghai", night, category="verification") is None
    assert check(everything, "Asia/Shanghai", night, category="alert") is None
    named = Window(start=time(22), end=time(8), categories=("alert",))
    assert check(named, "Asia/Shanghai", night, category="alert") is not None
    assert check(NIGHT, "Asia/Shanghai", night, category="notification") is None


def test_channels_limit_a_window():
    sms_only = Window(start=time(22), end=time(8), channels=("sms",))
    night = utc(2026, 5, 10, 15, 0)
    assert check(sms_only, "Asia/Shanghai", night, category="notification", channel="sms")
    assert check(sms_only, "Asia/Shanghai", night, category="notification", channel="inapp") is None


def test_timezone_fallbacks(settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    policy_tz = Window(
        start=time(22), end=time(8), timezone="Asia/Shanghai", categories=("marketing",)
    )
    now = utc(2026, 5, 10, 13, 30)  # 21:30 Shanghai, 22:30 Tokyo
    assert check(policy_tz, "", now) is None  # no recipient zone: the policy's
    assert check(NIGHT, "", now).until == utc(2026, 5, 10, 23, 0)  # neither: TIME_ZONE
    assert check(policy_tz, "Not/AZone", now) is None  # unknown zone: the policy's


def test_combine_drop_wins_and_defers_go_to_the_latest_end():
    late = Window(start=time(21), end=time(9), categories=("marketing",))
    night = utc(2026, 5, 10, 15, 0)
    out = combine(
        [NIGHT, late],
        recipient_tz="Asia/Shanghai",
        category="marketing",
        channel="email",
        now=night,
    )
    assert out.until == utc(2026, 5, 11, 1, 0)  # 09:00 local
    drop = Window(start=time(23), end=time(6), categories=("marketing",), action="drop")
    out = combine(
        [NIGHT, drop],
        recipient_tz="Asia/Shanghai",
        category="marketing",
        channel="email",
        now=night,
    )
    assert out.action == "drop"
