"""Business calendars of the sla service: open time, business time arithmetic and SLA deadlines.

The property tests compare the calendar arithmetic with a brute-force reference that decides, for
every UTC minute after the clock starts, whether the site is open (inside an expanded working
interval, outside every holiday and pause) and counts those minutes.
"""

from __future__ import annotations

import itertools
import time as wall_clock
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixloop_sla.domain.calendar import (
    TWENTY_FOUR_SEVEN,
    BusinessCalendar,
    Holiday,
    InvalidCalendarError,
    SpecialWorkingDay,
    WorkingHours,
    business_deadline,
    business_elapsed,
    holidays_from_ical,
)
from fixloop_sla.domain.instants import NaiveDatetimeError

MINUTE = timedelta(minutes=1)
MS = timedelta(milliseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute daylight-saving shift
    "Asia/Kolkata",  # +05:30, no daylight saving
    "America/Sao_Paulo",  # until 2019: daylight saving changes at local midnight
    "Pacific/Chatham",  # +12:45 / +13:45, changes at 02:45 local
]
TRANSITION_DAYS = [
    date(2026, 3, 29),  # Europe: spring forward
    date(2026, 10, 25),  # Europe: fall back
    date(2026, 3, 8),  # US
    date(2026, 11, 1),  # US
    date(2026, 4, 5),  # Lord Howe, Chatham: fall back
    date(2026, 10, 4),  # Lord Howe: spring forward
    date(2026, 9, 27),  # Chatham: spring forward
    date(2018, 11, 4),  # Sao Paulo: 00:00 -> 01:00
    date(2019, 2, 16),  # Sao Paulo: 24:00 -> 23:00
    date(2027, 1, 15),  # no transition anywhere
]
HORIZON = timedelta(days=21)
OFFICE = BusinessCalendar(
    "office", hours=tuple(WorkingHours(day, time(9), time(17)) for day in range(5))
)


def at(zone: ZoneInfo, wall_time: str) -> datetime:
    """A site's local wall time (fold=0), e.g. ``at(BERLIN, "2026-03-29 01:00")``."""
    return datetime.fromisoformat(wall_time).replace(tzinfo=zone)


def utc(wall_time: str) -> datetime:
    return datetime.fromisoformat(wall_time).replace(tzinfo=UTC)


# --- the brute-force reference -------------------------------------------------------------------


def minute_of(moment: datetime) -> int:
    return (moment - EPOCH) // MINUTE


def local_minute(zone: ZoneInfo, day: date, minutes: int) -> int:
    """The UTC minute of local wall time ``minutes`` after midnight of ``day`` (fold=0)."""
    day += timedelta(days=minutes // 1440)
    minutes %= 1440
    wall = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=zone)
    return minute_of(wall.astimezone(UTC))


def minutes_of(value: time | None, default: int) -> int:
    return default if value is None else value.hour * 60 + value.minute


def reference_open(
    calendar: BusinessCalendar,
    zone: ZoneInfo,
    first: int,
    count: int,
    pauses: list[tuple[datetime, datetime | None]],
) -> bytearray:
    """Whether each UTC minute first, first + 1, ... is counted (open and not paused)."""
    last = first + count
    opened = bytearray(count)

    def mark(low: int, high: int, value: int) -> None:
        for minute in range(max(low, first), min(high, last)):
            opened[minute - first] = value

    start_day = datetime.fromtimestamp(first * 60, zone).date() - timedelta(days=3)
    end_day = datetime.fromtimestamp(last * 60, zone).date() + timedelta(days=3)
    days = [start_day + timedelta(days=n) for n in range((end_day - start_day).days)]
    for day in days:
        intervals = [(h.start, h.end) for h in calendar.hours if h.weekday == day.weekday()]
        intervals += [(s.start, s.end) for s in calendar.special_days if s.day == day]
        for start, end in intervals:
            low, high = minutes_of(start, 0), minutes_of(end, 0)
            if high <= low:
                high += 1440
            mark(local_minute(zone, day, low), local_minute(zone, day, high), 1)
    for day in days:
        for holiday in calendar.holidays:
            if holiday.day == day:
                low = minutes_of(holiday.start, 0)
                high = minutes_of(holiday.end, 1440) or 1440
                mark(local_minute(zone, day, low), local_minute(zone, day, high), 0)
    for paused, resumed in pauses:
        mark(minute_of(paused), last if resumed is None else minute_of(resumed), 0)
    return opened


def reference_deadline(
    calendar: BusinessCalendar,
    zone: ZoneInfo,
    started_at: datetime,
    target: int,
    pauses: list[tuple[datetime, datetime | None]],
) -> datetime | None:
    if target == 0:
        return started_at
    first = minute_of(started_at)
    counted = 0
    window = reference_open(calendar, zone, first, HORIZON // MINUTE, pauses)
    for index, is_open in enumerate(window):
        counted += is_open
        if counted == target:
            return EPOCH + (first + index + 1) * MINUTE
    return None


def reference_elapsed(
    calendar: BusinessCalendar,
    zone: ZoneInfo,
    started_at: datetime,
    until: datetime,
    pauses: list[tuple[datetime, datetime | None]],
) -> timedelta:
    first, last = minute_of(started_at), minute_of(until)
    if last <= first:
        return timedelta(0)
    return sum(reference_open(calendar, zone, first, last - first, pauses)) * MINUTE


# --- strategies ----------------------------------------------------------------------------------

BOUNDARY_MINUTES = [0, 60, 90, 120, 135, 150, 165, 180, 210, 225, 1380, 1410]


@st.composite
def local_times(draw: st.DrawFn) -> int:
    return draw(st.one_of(st.sampled_from(BOUNDARY_MINUTES), st.integers(0, 1439)))


def as_time(minutes: int) -> time:
    return time((minutes // 60) % 24, minutes % 60)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[BusinessCalendar, ZoneInfo, datetime]:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    day = draw(st.sampled_from(TRANSITION_DAYS)) + timedelta(days=draw(st.integers(-6, 6)))
    started_at = datetime.combine(day, time(0), tzinfo=UTC) + draw(st.integers(0, 1439)) * MINUTE
    hours = []
    for _ in range(draw(st.integers(0, 6))):
        start = draw(local_times())
        length = draw(st.integers(1, 1439))
        hours.append(WorkingHours(draw(st.integers(0, 6)), as_time(start), as_time(start + length)))
    holidays = []
    for _ in range(draw(st.integers(0, 3))):
        holiday_day = day + timedelta(days=draw(st.integers(-2, 14)))
        if draw(st.booleans()):
            holidays.append(Holiday(holiday_day, name="full"))
        else:
            start = draw(local_times())
            end = draw(st.integers(start + 1, 1440))
            holidays.append(
                Holiday(holiday_day, as_time(start), None if end == 1440 else as_time(end))
            )
    specials = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(local_times())
        length = draw(st.integers(1, 1439))
        specials.append(
            SpecialWorkingDay(
                day + timedelta(days=draw(st.integers(-1, 10))),
                as_time(start),
                as_time(start + length),
            )
        )
    calendar = BusinessCalendar(
        "random", hours=tuple(hours), holidays=tuple(holidays), special_days=tuple(specials)
    )
    return calendar, zone, started_at


@st.composite
def pause_lists(draw: st.DrawFn, started_at: datetime) -> list[tuple[datetime, datetime | None]]:
    pauses: list[tuple[datetime, datetime | None]] = []
    cursor = started_at + draw(st.one_of(st.integers(-3000, 0), st.integers(0, 3000))) * MINUTE
    count = draw(st.integers(0, 3))
    for index in range(count):
        paused = cursor + draw(st.integers(0, 3000)) * MINUTE
        still_paused = index == count - 1 and draw(st.integers(0, 4)) == 0
        resumed = None if still_paused else paused + draw(st.integers(0, 3000)) * MINUTE
        pauses.append((paused, resumed))
        if resumed is None:
            break
        cursor = resumed
    return pauses


PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_deadlines_match_the_minute_by_minute_reference(data: st.DataObject) -> None:
    calendar, zone, started_at = data.draw(scenarios())
    pauses = data.draw(pause_lists(started_at))
    target = data.draw(st.one_of(st.integers(1, 600), st.integers(1, 3 * 1440)))
    expected = reference_deadline(calendar, zone, started_at, target, pauses)
    got = business_deadline(calendar, zone, started_at, target * MINUTE, pauses, horizon=HORIZON)
    assert got == expected
    if got is not None:
        assert got.tzinfo is UTC
        assert business_elapsed(calendar, zone, started_at, got, pauses) == target * MINUTE


@PROPERTY_SETTINGS
@given(data=st.data())
def test_elapsed_business_time_matches_the_minute_by_minute_reference(
    data: st.DataObject,
) -> None:
    calendar, zone, started_at = data.draw(scenarios())
    pauses = data.draw(pause_lists(started_at))
    until = started_at + data.draw(st.integers(-60, 21 * 1440)) * MINUTE
    expected = reference_elapsed(calendar, zone, started_at, until, pauses)
    assert business_elapsed(calendar, zone, started_at, until, pauses) == expected
    assert calendar.business_time(started_at, until, zone) == reference_elapsed(
        calendar, zone, started_at, until, []
    )


@PROPERTY_SETTINGS
@given(data=st.data())
def test_open_segments_and_adding_business_time_agree_at_millisecond_resolution(
    data: st.DataObject,
) -> None:
    calendar, zone, started_at = data.draw(scenarios())
    start = started_at + data.draw(st.integers(0, 86_400_000)) * MS
    end = start + data.draw(st.integers(0, 10 * 86_400_000)) * MS
    segments = calendar.open_segments(start, end, zone)
    assert all(start <= low < high <= end for low, high in segments)
    assert all(high < low for (_, high), (low, _) in itertools.pairwise(segments))
    measured = calendar.business_time(start, end, zone)
    assert measured == sum((high - low for low, high in segments), timedelta(0))
    reached = calendar.add_business_time(start, measured, zone, horizon=HORIZON)
    assert reached is not None
    assert reached <= end
    assert calendar.business_time(start, reached, zone) == measured
    if measured:
        assert calendar.business_time(start, reached - MS, zone) < measured


# --- 24x7 and daylight saving --------------------------------------------------------------------


def test_a_24x7_deadline_across_spring_forward_is_exact_in_real_seconds() -> None:
    started = at(BERLIN, "2026-03-29 01:00")  # 00:00 UTC; at 02:00 the clocks jump to 03:00
    deadline = business_deadline(TWENTY_FOUR_SEVEN, BERLIN, started, timedelta(hours=3), [])
    assert deadline == utc("2026-03-29 03:00")
    assert deadline.astimezone(BERLIN).hour == 5
    day = TWENTY_FOUR_SEVEN.business_time(
        at(BERLIN, "2026-03-29 00:00"), at(BERLIN, "2026-03-30 00:00"), BERLIN
    )
    assert day == timedelta(hours=23)


def test_a_24x7_deadline_across_fall_back_is_exact_in_real_seconds() -> None:
    started = at(BERLIN, "2026-10-25 00:00")  # 22:00 UTC the day before; 03:00 falls back to 02:00
    deadline = business_deadline(TWENTY_FOUR_SEVEN, BERLIN, started, timedelta(hours=4), [])
    assert deadline == utc("2026-10-25 02:00")
    assert deadline.astimezone(BERLIN).hour == 3
    assert TWENTY_FOUR_SEVEN.add_business_time(started, timedelta(0), BERLIN) == started


def test_business_hours_on_a_daylight_saving_day_are_real_hours() -> None:
    calendar = BusinessCalendar("sunday", hours=(WorkingHours(6, time(9), time(17)),))
    for day in (date(2026, 3, 29), date(2026, 10, 25)):
        start = datetime.combine(day, time(0), tzinfo=BERLIN)
        assert calendar.business_time(start, start + timedelta(days=1), BERLIN) == timedelta(
            hours=8
        )


def test_an_interval_opening_in_the_spring_forward_gap_opens_after_the_gap() -> None:
    calendar = BusinessCalendar("early", hours=(WorkingHours(6, time(2, 30), time(4, 0)),))
    segments = calendar.open_segments(
        at(BERLIN, "2026-03-29 00:00"), at(BERLIN, "2026-03-30 00:00"), BERLIN
    )
    # 02:30 does not exist that day: it is the instant 03:30 CEST (01:30 UTC)
    assert segments == [(utc("2026-03-29 01:30"), utc("2026-03-29 02:00"))]
    # the Sunday before: a plain 1.5 hours
    assert calendar.business_time(
        at(BERLIN, "2026-03-22 00:00"), at(BERLIN, "2026-03-23 00:00"), BERLIN
    ) == timedelta(hours=1, minutes=30)


def test_an_ambiguous_boundary_on_fall_back_day_is_its_first_occurrence() -> None:
    calendar = BusinessCalendar("night", hours=(WorkingHours(6, time(1, 30), time(3, 0)),))
    segments = calendar.open_segments(
        at(NEW_YORK, "2026-11-01 00:00"), at(NEW_YORK, "2026-11-02 00:00"), NEW_YORK
    )
    # 01:30 EDT (05:30 UTC), then 01:00-02:00 again in EST, closing at 03:00 EST (08:00 UTC)
    assert segments == [(utc("2026-11-01 05:30"), utc("2026-11-01 08:00"))]
    deadline = business_deadline(
        calendar, NEW_YORK, at(NEW_YORK, "2026-10-31 12:00"), timedelta(hours=2), []
    )
    assert deadline == utc("2026-11-01 07:30")


# --- working hours ------------------------------------------------------------------------------


def test_a_start_outside_business_hours_counts_from_the_next_opening() -> None:
    friday_evening = at(BERLIN, "2026-06-12 18:00")
    deadline = business_deadline(OFFICE, BERLIN, friday_evening, timedelta(hours=1), [])
    assert deadline == at(BERLIN, "2026-06-15 10:00")
    assert OFFICE.business_time(friday_evening, at(BERLIN, "2026-06-15 09:00"), BERLIN) == (
        timedelta(0)
    )


def test_starting_exactly_at_opening_and_exactly_at_closing() -> None:
    monday_open = at(BERLIN, "2026-06-15 09:00")
    assert business_deadline(OFFICE, BERLIN, monday_open, timedelta(hours=8), []) == at(
        BERLIN, "2026-06-15 17:00"
    )
    monday_close = at(BERLIN, "2026-06-15 17:00")
    assert business_deadline(OFFICE, BERLIN, monday_close, timedelta(hours=1), []) == at(
        BERLIN, "2026-06-16 10:00"
    )
    assert OFFICE.business_time(monday_open, monday_close, BERLIN) == timedelta(hours=8)


def test_a_72_hour_target_on_an_office_calendar_takes_nine_working_days() -> None:
    started = at(BERLIN, "2026-06-12 18:00")  # a Friday evening
    deadline = business_deadline(OFFICE, BERLIN, started, timedelta(hours=72), [])
    assert deadline == at(BERLIN, "2026-06-25 17:00")
    runs = 300
    begun = wall_clock.perf_counter()
    for _ in range(runs):
        business_deadline(OFFICE, BERLIN, started, timedelta(hours=72), [])
    assert (wall_clock.perf_counter() - begun) / runs < 0.001


def test_an_interval_crossing_midnight() -> None:
    night = BusinessCalendar(
        "night",
        hours=(WorkingHours(4, time(22), time(6)), WorkingHours(0, time(18), time(0))),
    )
    friday_late = at(BERLIN, "2026-06-12 23:00")
    assert business_deadline(night, BERLIN, friday_late, timedelta(hours=5), []) == at(
        BERLIN, "2026-06-13 04:00"
    )
    # 7 hours left on Friday night (23:00-06:00), then Monday 18:00 to midnight
    assert business_deadline(night, BERLIN, friday_late, timedelta(hours=9), []) == at(
        BERLIN, "2026-06-15 20:00"
    )
    assert night.business_time(
        at(BERLIN, "2026-06-15 00:00"), at(BERLIN, "2026-06-17 00:00"), BERLIN
    ) == timedelta(hours=6)


def test_millisecond_precision_without_minute_truncation() -> None:
    calendar = BusinessCalendar("odd", hours=(WorkingHours(0, time(9, 0, 0, 250_000), time(10)),))
    monday = at(BERLIN, "2026-06-15 00:00")
    started = monday + timedelta(hours=9, microseconds=999)  # truncated to 09:00:00.000
    deadline = calendar.add_business_time(started, timedelta(milliseconds=1500), BERLIN)
    assert deadline == at(BERLIN, "2026-06-15 09:00:01") + timedelta(milliseconds=750)
    assert deadline is not None
    assert deadline.tzinfo is UTC
    assert calendar.business_time(monday, deadline, BERLIN) == timedelta(milliseconds=1500)


# --- holidays and special days -------------------------------------------------------------------


def test_a_holiday_on_a_weekend_changes_nothing() -> None:
    with_holiday = BusinessCalendar(
        "office", hours=OFFICE.hours, holidays=(Holiday(date(2026, 6, 13), name="Saturday"),)
    )
    started = at(BERLIN, "2026-06-12 15:00")
    for hours in (1, 2, 3, 20):
        target = timedelta(hours=hours)
        assert business_deadline(with_holiday, BERLIN, started, target, []) == business_deadline(
            OFFICE, BERLIN, started, target, []
        )


def test_a_full_holiday_and_a_partial_holiday() -> None:
    calendar = BusinessCalendar(
        "office",
        hours=OFFICE.hours,
        holidays=(
            Holiday(date(2026, 6, 15), time(12), time(14), name="town fair"),
            Holiday(date(2026, 6, 16), name="founders' day"),
        ),
    )
    monday = at(BERLIN, "2026-06-15 09:00")
    # Monday: 09-12 and 14-17 (6 h), Tuesday off, Wednesday from 09:00
    assert business_deadline(calendar, BERLIN, monday, timedelta(hours=8), []) == at(
        BERLIN, "2026-06-17 11:00"
    )
    assert calendar.business_time(monday, at(BERLIN, "2026-06-15 13:00"), BERLIN) == timedelta(
        hours=3
    )


def test_a_special_working_day_adds_hours_and_a_holiday_still_wins() -> None:
    saturday = date(2026, 6, 13)
    worked = BusinessCalendar(
        "office", hours=OFFICE.hours, special_days=(SpecialWorkingDay(saturday, time(9), time(13)),)
    )
    friday = at(BERLIN, "2026-06-12 17:00")
    assert business_deadline(worked, BERLIN, friday, timedelta(hours=2), []) == at(
        BERLIN, "2026-06-13 11:00"
    )
    off = BusinessCalendar(
        "office",
        hours=OFFICE.hours,
        holidays=(Holiday(saturday),),
        special_days=worked.special_days,
    )
    assert business_deadline(off, BERLIN, friday, timedelta(hours=2), []) == at(
        BERLIN, "2026-06-15 11:00"
    )


def test_24x7_ignores_holidays() -> None:
    calendar = BusinessCalendar("always", holidays=(Holiday(date(2026, 6, 15)),), always_open=True)
    started = at(BERLIN, "2026-06-15 00:00")
    assert calendar.business_time(started, started + timedelta(days=1), BERLIN) == timedelta(days=1)


# --- pauses --------------------------------------------------------------------------------------


def test_a_pause_spanning_a_weekend() -> None:
    started = at(BERLIN, "2026-06-12 15:00")  # Friday
    pause = (at(BERLIN, "2026-06-12 16:00"), at(BERLIN, "2026-06-15 10:00"))
    assert business_deadline(OFFICE, BERLIN, started, timedelta(hours=3), [pause]) == at(
        BERLIN, "2026-06-15 12:00"
    )
    assert business_deadline(TWENTY_FOUR_SEVEN, BERLIN, started, timedelta(hours=3), [pause]) == (
        at(BERLIN, "2026-06-15 12:00")
    )
    assert business_elapsed(
        OFFICE, BERLIN, started, at(BERLIN, "2026-06-15 11:00"), [pause]
    ) == timedelta(hours=2)


def test_pausing_and_resuming_at_the_same_instant_changes_nothing() -> None:
    started = at(BERLIN, "2026-06-15 09:00")
    blip = at(BERLIN, "2026-06-15 11:00")
    target = timedelta(hours=5)
    assert business_deadline(OFFICE, BERLIN, started, target, [(blip, blip)]) == (
        business_deadline(OFFICE, BERLIN, started, target, [])
    )
    until = at(BERLIN, "2026-06-15 12:00")
    assert business_elapsed(OFFICE, BERLIN, started, until, [(blip, blip)]) == timedelta(hours=3)


def test_a_pause_still_open_stops_the_deadline_only_if_reached_first() -> None:
    started = at(BERLIN, "2026-06-15 09:00")
    open_pause = [(at(BERLIN, "2026-06-15 11:00"), None)]
    assert business_deadline(OFFICE, BERLIN, started, timedelta(hours=3), open_pause) is None
    assert business_deadline(OFFICE, BERLIN, started, timedelta(hours=2), open_pause) == at(
        BERLIN, "2026-06-15 11:00"
    )
    assert business_elapsed(
        OFFICE, BERLIN, started, at(BERLIN, "2026-06-20 00:00"), open_pause
    ) == timedelta(hours=2)


def test_a_pause_begun_before_the_start_is_clipped() -> None:
    started = at(BERLIN, "2026-06-15 09:00")
    pause = [(at(BERLIN, "2026-06-14 00:00"), at(BERLIN, "2026-06-15 10:00"))]
    assert business_deadline(OFFICE, BERLIN, started, timedelta(hours=1), pause) == at(
        BERLIN, "2026-06-15 11:00"
    )
    assert business_deadline(OFFICE, BERLIN, started, timedelta(0), pause) == started


# --- calendars that never open, zones, inputs -----------------------------------------------------


def test_a_calendar_without_working_days_never_reaches_a_deadline() -> None:
    closed = BusinessCalendar("closed")
    started = at(BERLIN, "2026-06-15 09:00")
    assert business_deadline(closed, BERLIN, started, timedelta(hours=1), []) is None
    assert closed.add_business_time(started, timedelta(minutes=1), BERLIN) is None
    assert closed.add_business_time(started, timedelta(0), BERLIN) == started
    assert closed.business_time(started, started + timedelta(days=30), BERLIN) == timedelta(0)


def test_the_site_zone_decides_the_deadline() -> None:
    started = utc("2026-06-15 12:00")  # 14:00 in Berlin, 08:00 in New York
    in_berlin = business_deadline(OFFICE, BERLIN, started, timedelta(hours=4), [])
    in_new_york = business_deadline(OFFICE, NEW_YORK, started, timedelta(hours=4), [])
    assert in_berlin == at(BERLIN, "2026-06-16 10:00")
    assert in_new_york == at(NEW_YORK, "2026-06-15 13:00")
    assert in_berlin != in_new_york


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2026, 6, 15, 9, 0)  # noqa: DTZ001 - the error under test
    with pytest.raises(NaiveDatetimeError):
        business_deadline(OFFICE, BERLIN, naive, timedelta(hours=1), [])
    with pytest.raises(NaiveDatetimeError):
        OFFICE.business_time(naive, at(BERLIN, "2026-06-16 00:00"), BERLIN)
    with pytest.raises(NaiveDatetimeError):
        business_elapsed(OFFICE, BERLIN, at(BERLIN, "2026-06-15 00:00"), naive, [])


def test_invalid_calendar_parts_are_rejected_with_a_specific_message() -> None:
    with pytest.raises(InvalidCalendarError, match="weekday 7"):
        WorkingHours(7, time(9), time(17))
    with pytest.raises(InvalidCalendarError, match="empty"):
        WorkingHours(0, time(9), time(9))
    with pytest.raises(InvalidCalendarError, match="ends at or before"):
        Holiday(date(2026, 6, 15), time(14), time(12))
    with pytest.raises(InvalidCalendarError, match="without a zone"):
        WorkingHours(0, time(9, tzinfo=UTC), time(17))
    with pytest.raises(InvalidCalendarError, match="must not be empty"):
        BusinessCalendar("")


# --- iCalendar import ----------------------------------------------------------------------------

ICAL = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Fixloop//holidays//EN
BEGIN:VEVENT
UID:new-year
SUMMARY:New Year's Day
DTSTART;VALUE=DATE:20260101
RRULE:FREQ=YEARLY;COUNT=3
END:VEVENT
BEGIN:VEVENT
UID:christmas
SUMMARY:Christmas
DTSTART;VALUE=DATE:20261224
DTEND;VALUE=DATE:20261227
END:VEVENT
BEGIN:VEVENT
UID:meeting
SUMMARY:Staff meeting
DTSTART;TZID=Europe/Berlin:20260612T130000
DTEND;TZID=Europe/Berlin:20260612T150000
END:VEVENT
BEGIN:VEVENT
UID:move
SUMMARY:Office move
DTSTART:20260701T120000
DTEND:20260703T100000
END:VEVENT
BEGIN:VEVENT
UID:thanksgiving
SUMMARY:Thanksgiving
DTSTART;VALUE=DATE:20261126
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH;UNTIL=20281231
END:VEVENT
BEGIN:VEVENT
UID:new-year-copy
SUMMARY:New Year's Day
DTSTART;VALUE=DATE:20270101
END:VEVENT
END:VCALENDAR
"""


def test_holidays_from_an_icalendar_file() -> None:
    holidays = holidays_from_ical(ICAL)
    assert holidays == (
        Holiday(date(2026, 1, 1), name="New Year's Day"),
        Holiday(date(2026, 6, 12), time(13), time(15), name="Staff meeting"),
        Holiday(date(2026, 7, 1), time(12), None, name="Office move"),
        Holiday(date(2026, 7, 2), name="Office move"),
        Holiday(date(2026, 7, 3), None, time(10), name="Office move"),
        Holiday(date(2026, 11, 26), name="Thanksgiving"),
        Holiday(date(2026, 12, 24), name="Christmas"),
        Holiday(date(2026, 12, 25), name="Christmas"),
        Holiday(date(2026, 12, 26), name="Christmas"),
        Holiday(date(2027, 1, 1), name="New Year's Day"),
        Holiday(date(2027, 11, 25), name="Thanksgiving"),
        Holiday(date(2028, 1, 1), name="New Year's Day"),
        Holiday(date(2028, 11, 23), name="Thanksgiving"),
    )
    assert holidays_from_ical(ICAL.encode()) == holidays
    calendar = BusinessCalendar("office", hours=OFFICE.hours, holidays=holidays)
    friday = at(BERLIN, "2026-06-12 09:00")
    assert calendar.business_time(friday, friday + timedelta(days=1), BERLIN) == timedelta(hours=6)


def test_a_yearly_rule_on_february_29_skips_common_years() -> None:
    data = ICAL.split("BEGIN:VEVENT", maxsplit=1)[0] + (
        "BEGIN:VEVENT\nUID:leap\nSUMMARY:Leap day\nDTSTART;VALUE=DATE:20240229\n"
        "RRULE:FREQ=YEARLY;COUNT=2\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    assert [holiday.day for holiday in holidays_from_ical(data)] == [
        date(2024, 2, 29),
        date(2028, 2, 29),
    ]


def test_an_unsupported_recurrence_names_its_event() -> None:
    data = ICAL.replace("RRULE:FREQ=YEARLY;COUNT=3", "RRULE:FREQ=WEEKLY;COUNT=3")
    with pytest.raises(InvalidCalendarError, match="New Year's Day") as caught:
        holidays_from_ical(data)
    assert "FREQ=WEEKLY" in str(caught.value)


@pytest.mark.parametrize("garbage", ["", "hello world", b"\xff\xfe\x00", "BEGIN:VCALENDAR\nfoo\n"])
def test_garbage_is_a_clear_invalid_calendar_error(garbage: str | bytes) -> None:
    with pytest.raises(InvalidCalendarError) as caught:
        holidays_from_ical(garbage)
    message = str(caught.value)
    assert message
    assert "\n" not in message
    assert "Traceback" not in message
