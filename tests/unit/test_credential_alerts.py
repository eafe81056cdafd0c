"""Credential alerts without I/O: each stage at the contractor's local morning on the right local
date in any zone (daylight-saving change days included), in order, and the arming rule that never
arms a stage twice and never sends two warnings at once."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixloop_contractors.domain.credential_alerts import (
    DEFAULT_MORNING,
    STAGES,
    AlertStage,
    alert_moments,
    alerts_to_arm,
    days_left,
    local_moment,
)
from fixloop_contractors.domain.model import Credential, CredentialKind

DST_ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney")
OTHER_ZONES = (
    "UTC",
    "Asia/Kolkata",
    "America/St_Johns",
    "Australia/Lord_Howe",  # a 30-minute change
    "America/Santiago",  # changes at midnight
    "Pacific/Chatham",
    "Europe/London",
    "America/Sao_Paulo",
)
ZONES = DST_ZONES + OTHER_ZONES
YEARS = range(2024, 2036)


@cache
def change_days(name: str) -> tuple[date, ...]:
    """The local dates on which ``name`` changes its UTC offset, in :data:`YEARS`."""
    tz = ZoneInfo(name)
    found = []
    day = date(YEARS.start, 1, 1)
    while day.year < YEARS.stop:
        start = datetime.combine(day, time(0), tzinfo=tz).utcoffset()
        end = datetime.combine(day, time(23, 59), tzinfo=tz).utcoffset()
        if start != end:
            found.append(day)
        day += timedelta(days=1)
    return tuple(found)


def _credential(expires_on: date) -> Credential:
    return Credential(kind=CredentialKind.TRADE_LICENCE, number="TL 1/2", expires_on=expires_on)


@st.composite
def zone_and_expiry(draw: st.DrawFn) -> tuple[str, date]:
    """A zone and an expiry date; often one whose alert falls on a change day of the zone."""
    name = draw(st.sampled_from(ZONES))
    days = change_days(name)
    on_change_day = draw(st.booleans())
    if days and on_change_day:
        stage = draw(st.sampled_from(STAGES))
        return name, draw(st.sampled_from(days)) - timedelta(days=stage.offset_days)
    return name, draw(st.dates(min_value=date(2024, 2, 1), max_value=date(2035, 11, 30)))


def _wall(moment: datetime, tz: ZoneInfo) -> datetime:
    """The wall-clock time in ``tz`` at ``moment`` (through UTC: ``astimezone`` to the zone a
    datetime already has returns it unchanged, fold and all)."""
    return moment.astimezone(UTC).astimezone(tz).replace(tzinfo=None)


@settings(max_examples=400, deadline=None)
@given(zone_and_expiry())
def test_every_alert_is_at_the_local_morning_of_its_local_date(given_: tuple[str, date]) -> None:
    name, expires_on = given_
    tz = ZoneInfo(name)
    moments = alert_moments(_credential(expires_on), name)
    assert [m.stage for m in moments] == list(STAGES)
    for moment in moments:
        assert moment.at.tzinfo is UTC
        assert moment.local_date == expires_on + timedelta(days=moment.stage.offset_days)
        assert _wall(moment.at, tz) == datetime.combine(moment.local_date, DEFAULT_MORNING)
    assert [m.at for m in moments] == sorted(m.at for m in moments)
    assert len({m.at for m in moments}) == len(moments)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(ZONES).flatmap(
        lambda name: st.tuples(
            st.just(name), st.sampled_from(change_days(name) or (date(2026, 1, 1),))
        )
    ),
    st.times(),
)
def test_any_morning_time_on_a_change_day_is_resolved_like_temporal_compatible(
    zone_day: tuple[str, date], morning: time
) -> None:
    """A time that exists is kept; one in a gap moves forward by the gap; in a fold the earlier
    moment is taken. The local date is always the one asked for (no zone here skips a date)."""
    name, day = zone_day
    tz = ZoneInfo(name)
    moment = local_moment(day, morning, tz)
    morning = morning.replace(fold=0)
    wanted = datetime.combine(day, morning)
    earlier = datetime.combine(day, morning, tzinfo=tz)
    later = earlier.replace(fold=1)
    before, after = earlier.utcoffset(), later.utcoffset()
    assert before is not None
    assert after is not None
    exists = _wall(later, tz) == wanted or _wall(earlier, tz) == wanted
    if exists:
        assert _wall(moment, tz) == wanted
        assert moment == min(earlier.astimezone(UTC), later.astimezone(UTC))
    else:  # a gap: the offset grows across it, and the time moves on by that much
        gap = max(before, after) - min(before, after)
        assert _wall(moment, tz) == wanted + gap
    assert _wall(moment, tz).date() == day


@pytest.mark.parametrize(
    ("name", "expires_on", "expected"),
    [
        # Berlin leaves summer time on 25 Oct 2026: 08:00 is 06:00 UTC before, 07:00 UTC after.
        (
            "Europe/Berlin",
            date(2026, 11, 2),
            ["2026-10-03T06:00:00+00:00", "2026-10-26T07:00:00+00:00", "2026-11-03T07:00:00+00:00"],
        ),
        # New York leaves daylight time on 1 Nov 2026 (08:00 EDT = 12:00 UTC, EST = 13:00 UTC).
        (
            "America/New_York",
            date(2026, 11, 8),
            ["2026-10-09T12:00:00+00:00", "2026-11-01T13:00:00+00:00", "2026-11-09T13:00:00+00:00"],
        ),
        # Sydney enters daylight time on 4 Oct 2026 (08:00 AEST = 22:00 UTC the day before,
        # AEDT = 21:00 UTC the day before).
        (
            "Australia/Sydney",
            date(2026, 10, 11),
            ["2026-09-10T22:00:00+00:00", "2026-10-03T21:00:00+00:00", "2026-10-11T21:00:00+00:00"],
        ),
    ],
)
def test_known_change_days(name: str, expires_on: date, expected: list[str]) -> None:
    moments = alert_moments(_credential(expires_on), name)
    assert [m.at.isoformat() for m in moments] == expected


def test_a_credential_imported_twenty_days_before_expiry_warns_once_now() -> None:
    credential = _credential(date(2026, 12, 31))
    moments = alert_moments(credential, "Europe/Berlin")
    now = datetime(2026, 12, 11, 15, 0, tzinfo=UTC)
    armed = alerts_to_arm(moments, now)
    assert [(a.stage, a.late) for a in armed] == [
        (AlertStage.EXPIRING_30, True),
        (AlertStage.EXPIRING_7, False),
        (AlertStage.EXPIRED, False),
    ]
    assert armed[0].due_at == now
    assert days_left(credential, "Europe/Berlin", now) == 20
    # Imported again a day later: nothing new.
    again = alerts_to_arm(moments, now + timedelta(days=1), armed={a.stage for a in armed})
    assert again == ()


def test_an_expired_credential_gets_only_the_expired_alert() -> None:
    moments = alert_moments(_credential(date(2026, 1, 31)), "America/New_York")
    armed = alerts_to_arm(moments, datetime(2026, 11, 1, tzinfo=UTC))
    assert [(a.stage, a.late) for a in armed] == [(AlertStage.EXPIRED, True)]


def test_the_last_valid_day_is_not_expired_yet() -> None:
    credential = _credential(date(2026, 11, 2))
    last_evening = datetime(2026, 11, 2, 22, 59, tzinfo=UTC)  # 23:59 in Berlin
    assert days_left(credential, "Europe/Berlin", last_evening) == 0
    expired = alert_moments(credential, "Europe/Berlin")[-1]
    assert expired.local_date == date(2026, 11, 3)
    assert expired.at > last_evening


@settings(max_examples=300, deadline=None)
@given(
    zone_and_expiry(),
    st.lists(st.integers(min_value=-60 * 24 * 60, max_value=60 * 24 * 60), max_size=8),
)
def test_arming_never_arms_a_stage_twice(given_: tuple[str, date], offsets: list[int]) -> None:
    """Importing the same credential at any moments (in time order), with what was armed before
    kept: each stage is armed at most once, at most one of them late (fired at once) per
    import, and only the latest passed one."""
    name, expires_on = given_
    moments = alert_moments(_credential(expires_on), name)
    start = datetime.combine(expires_on, time(12), tzinfo=UTC)
    armed: dict[AlertStage, int] = {}
    for minutes in sorted(offsets):
        now = start + timedelta(minutes=minutes)
        chosen = alerts_to_arm(moments, now, armed=set(armed))
        late = [a for a in chosen if a.late]
        assert len(late) <= 1
        for alert in chosen:
            armed[alert.stage] = armed.get(alert.stage, 0) + 1
            if alert.late:
                assert alert.due_at == now
                passed = [m for m in moments if m.at <= now]
                assert alert.stage == passed[-1].stage
            else:
                assert alert.due_at > now
                assert alert.due_at == next(m.at for m in moments if m.stage is alert.stage)
        stages = [a.stage for a in chosen]
        assert len(stages) == len(set(stages))
    assert all(count == 1 for count in armed.values())


@settings(max_examples=300, deadline=None)
@given(zone_and_expiry(), st.integers(min_value=-60 * 24 * 60, max_value=60 * 24 * 60))
def test_one_arming_is_the_future_stages_and_the_latest_passed_one(
    given_: tuple[str, date], minutes: int
) -> None:
    name, expires_on = given_
    moments = alert_moments(_credential(expires_on), name)
    now = datetime.combine(expires_on, time(12), tzinfo=UTC) + timedelta(minutes=minutes)
    chosen = alerts_to_arm(moments, now)
    future = [m.stage for m in moments if m.at > now]
    passed = [m.stage for m in moments if m.at <= now]
    assert [a.stage for a in chosen] == passed[-1:] + future
