"""Business calendars: when a site counts as open for SLA clocks, and the time arithmetic on them.

A business calendar says when the SLA clock of a work order runs: the weekly working hours of the
site (local wall time in the site's IANA time zone), the holidays it is closed on (whole days or
parts of a day), and extra working days (a Saturday that is worked). A 24x7 calendar counts every
real second.

The weekly hours are expanded per local date D: an interval of D's weekday opens at D + start and
closes at D + end (D + 1 + end when it crosses midnight or ends at 00:00); each boundary is turned
into an instant with ``fold=0`` (PEP 495), so a boundary in a spring-forward gap moves forward by
the gap (02:30 on a day that jumps from 02:00 to 03:00 is the instant 03:30 local) and an
ambiguous boundary on a fall-back day is its first occurrence. Special working days add their
interval on their date the same way. The calendar is open in the union of these intervals minus
the holidays: a full holiday closes its whole local day (00:00 to the next 00:00, converted), a
partial one the part of its date it names. Durations are exact real seconds at millisecond
resolution: a 09:00-17:00 day on a daylight-saving day is still 8 hours unless a boundary falls
into the gap or the fold.

An SLA deadline is :func:`business_deadline`: the clock counts open calendar time outside the spans
in which the order was paused (waiting for the customer, for parts).

Every datetime returned is an instant (:mod:`instants`): timezone-aware UTC, whole milliseconds.
Every datetime accepted must be aware (:class:`NaiveDatetimeError` otherwise).
"""

from __future__ import annotations

import calendar as _gregorian
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from fixloop_sla.domain.instants import to_instant

if TYPE_CHECKING:
    from icalendar import Component

__all__ = [
    "TWENTY_FOUR_SEVEN",
    "BusinessCalendar",
    "Holiday",
    "InvalidCalendarError",
    "SpecialWorkingDay",
    "WorkingHours",
    "business_deadline",
    "business_elapsed",
    "holidays_from_ical",
]

DEFAULT_HORIZON = timedelta(days=2 * 366)
"""How far after the start a deadline is searched for before it is given up as never reached."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)  # noqa: DTZ001 - local wall time, the zone is applied separately
_MS = timedelta(milliseconds=1)
_DAY_MS = 86_400_000
_MAX_CACHED_DAYS = 100_000
_ICAL_MAX_OCCURRENCES = 50
_ICAL_LAST_YEAR = 2100

Pause = tuple[datetime, datetime | None]
"""A span [paused at, resumed at) in which an SLA clock does not count; None: still paused."""


class InvalidCalendarError(ValueError):
    """A business calendar (or an iCalendar holiday file) that cannot be used; says what and why."""


def _check_time(value: object, what: str) -> time:
    if not isinstance(value, time):
        msg = f"{what} must be a time of day, not {type(value).__name__}"
        raise InvalidCalendarError(msg)
    if value.tzinfo is not None:
        msg = f"{what} {value.isoformat()} must be a local wall time without a zone"
        raise InvalidCalendarError(msg)
    if value.microsecond % 1000:
        msg = f"{what} {value.isoformat()} is finer than a millisecond"
        raise InvalidCalendarError(msg)
    return value


def _check_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        msg = f"{what} must be a string, not {type(value).__name__}"
        raise InvalidCalendarError(msg)
    return value


def _check_date(value: object, what: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        msg = f"{what} must be a date, not {type(value).__name__}"
        raise InvalidCalendarError(msg)
    return value


def _time_ms(value: time) -> int:
    """Milliseconds from local midnight to ``value``."""
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1000 + value.microsecond // 1000


def _span_ms(start: time, end: time) -> tuple[int, int]:
    """A local [start, end) in ms from the day's midnight; end <= start crosses midnight."""
    start_ms, end_ms = _time_ms(start), _time_ms(end)
    if end_ms <= start_ms:
        end_ms += _DAY_MS
    return start_ms, end_ms


@dataclass(frozen=True)
class WorkingHours:
    """One weekly working interval of a site, in the site's local wall time.

    ``weekday`` is the local day the interval starts on (0 = Monday ... 6 = Sunday). An ``end`` at
    or before ``start`` crosses midnight into the next day; ``time(0)`` as the end is midnight.
    ``start == end`` is rejected (use ``00:00``-``00:00`` of consecutive intervals, or a 24x7
    calendar, for round-the-clock work).
    """

    weekday: int
    start: time
    end: time

    def __post_init__(self) -> None:
        if isinstance(self.weekday, bool) or not isinstance(self.weekday, int):
            msg = f"working hours weekday must be an int 0-6, not {self.weekday!r}"
            raise InvalidCalendarError(msg)
        if not 0 <= self.weekday <= 6:
            msg = f"working hours weekday {self.weekday} is not 0 (Monday) to 6 (Sunday)"
            raise InvalidCalendarError(msg)
        _check_time(self.start, "working hours start")
        _check_time(self.end, "working hours end")
        if self.start == self.end:
            msg = f"working hours {self.start.isoformat()}-{self.end.isoformat()} are empty"
            raise InvalidCalendarError(msg)


@dataclass(frozen=True)
class Holiday:
    """A local date the site does not work: all of it, or only [start, end) of it.

    ``start`` None means from 00:00; ``end`` None (or 00:00) means to the end of the day. With
    neither, the whole local day is off. A holiday closes the site even when a special working day
    or a shift from the day before would have it open.
    """

    day: date
    start: time | None = None
    end: time | None = None
    name: str = ""

    def __post_init__(self) -> None:
        _check_date(self.day, "holiday day")
        if self.start is not None:
            _check_time(self.start, "holiday start")
        if self.end is not None:
            _check_time(self.end, "holiday end")
        _check_str(self.name, "holiday name")
        start_ms, end_ms = self.local_span_ms()
        if end_ms <= start_ms:
            msg = f"holiday {self.day.isoformat()} ends at or before it starts"
            raise InvalidCalendarError(msg)

    @property
    def full_day(self) -> bool:
        """Whether the whole local day is off."""
        return self.local_span_ms() == (0, _DAY_MS)

    def local_span_ms(self) -> tuple[int, int]:
        """The local [start, end) of the time off, in ms from the day's midnight (end <= 24 h)."""
        start_ms = 0 if self.start is None else _time_ms(self.start)
        end_ms = _DAY_MS if self.end is None or self.end == time(0) else _time_ms(self.end)
        return start_ms, end_ms


@dataclass(frozen=True)
class SpecialWorkingDay:
    """Extra working hours on one local date (a Saturday that is worked); holidays still win.

    ``end`` at or before ``start`` crosses midnight into the next day, as for :class:`WorkingHours`.
    """

    day: date
    start: time
    end: time

    def __post_init__(self) -> None:
        _check_date(self.day, "special working day")
        _check_time(self.start, "special working day start")
        _check_time(self.end, "special working day end")
        if self.start == self.end:
            msg = f"special working day {self.day.isoformat()} has empty hours"
            raise InvalidCalendarError(msg)


def _as_tuple(values: object, kind: type[Any], what: str) -> tuple[Any, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        msg = f"calendar {what} must be a sequence of {kind.__name__}"
        raise InvalidCalendarError(msg)
    items = tuple(values)
    for item in items:
        if not isinstance(item, kind):
            msg = f"calendar {what} must hold {kind.__name__}, not {type(item).__name__}"
            raise InvalidCalendarError(msg)
    return items


@dataclass(frozen=True)
class BusinessCalendar:
    """When a site counts as open for SLA clocks: weekly hours, holidays, extra working days.

    ``always_open`` is a 24x7 calendar: every real second counts and holidays are ignored.
    ``version`` changes whenever the calendar's content does, so clocks can pin the calendar they
    were computed with.

    The site's time zone is not part of the calendar: the same calendar serves sites in several
    zones, and every computation takes the zone of the work's site.
    """

    name: str
    hours: tuple[WorkingHours, ...] = ()
    holidays: tuple[Holiday, ...] = ()
    special_days: tuple[SpecialWorkingDay, ...] = ()
    always_open: bool = False
    version: str = "1"
    _hash: ClassVar[int]  # set per instance in __post_init__; not a field

    def __post_init__(self) -> None:
        if not _check_str(self.name, "calendar name"):
            msg = "calendar name must not be empty"
            raise InvalidCalendarError(msg)
        _check_str(self.version, f"calendar {self.name}: version")
        object.__setattr__(self, "hours", _as_tuple(self.hours, WorkingHours, "hours"))
        object.__setattr__(self, "holidays", _as_tuple(self.holidays, Holiday, "holidays"))
        object.__setattr__(
            self,
            "special_days",
            _as_tuple(self.special_days, SpecialWorkingDay, "special days"),
        )
        object.__setattr__(self, "always_open", bool(self.always_open))
        fields = (self.name, self.hours, self.holidays, self.special_days)
        object.__setattr__(self, "_hash", hash((*fields, self.always_open, self.version)))

    def __hash__(self) -> int:
        # computed once: calendars key the per-zone expansion cache on every computation
        return self._hash

    def __reduce__(self) -> tuple[type[BusinessCalendar], tuple[Any, ...]]:
        # rebuilt through __init__, so the cached hash is that of the process it lands in
        fields = (self.hours, self.holidays, self.special_days, self.always_open, self.version)
        return type(self), (self.name, *fields)

    def open_segments(
        self, start: datetime, end: datetime, zone: ZoneInfo
    ) -> list[tuple[datetime, datetime]]:
        """The [a, b) spans in [start, end) when the site is open: sorted, disjoint and merged."""
        start_ms, end_ms = _ms(start), _ms(end)
        schedule = _schedule(self, zone)
        return [(_instant(a), _instant(b)) for a, b in schedule.segments(start_ms, end_ms)]

    def business_time(self, start: datetime, end: datetime, zone: ZoneInfo) -> timedelta:
        """How much open time lies in [start, end) (zero if end <= start), in real seconds."""
        start_ms, end_ms = _ms(start), _ms(end)
        return timedelta(milliseconds=_schedule(self, zone).measure(start_ms, end_ms))

    def add_business_time(
        self,
        start: datetime,
        amount: timedelta,
        zone: ZoneInfo,
        *,
        horizon: timedelta = DEFAULT_HORIZON,
    ) -> datetime | None:
        """The earliest instant t >= start with ``business_time(start, t) == amount``.

        ``amount`` is rounded up to whole milliseconds; zero gives ``start``. None when the amount
        is not reached within ``horizon`` after ``start`` (a calendar that is never open).
        """
        start_ms = _ms(start)
        amount_ms = _duration_ms(amount, "business time to add")
        limit = start_ms + _duration_ms(horizon, "horizon")
        if amount_ms == 0:
            return _instant(start_ms)
        reached, _ = _schedule(self, zone).advance(start_ms, amount_ms, limit)
        return None if reached is None else _instant(reached)


TWENTY_FOUR_SEVEN = BusinessCalendar(name="24x7", always_open=True)
"""Round the clock: every real second counts, holidays included."""


def business_elapsed(
    calendar: BusinessCalendar,
    zone: ZoneInfo,
    started_at: datetime,
    until: datetime,
    pauses: Sequence[Pause] = (),
) -> timedelta:
    """The SLA clock's count at ``until``: open time in [started_at, until) outside the pauses.

    Pauses are [paused at, resumed at) spans (None: still paused); they may begin before
    ``started_at`` or end after ``until``. Overlapping or unsorted pauses are merged.
    """
    start_ms, until_ms = _ms(started_at), _ms(until)
    spans = _pause_spans(pauses)
    if until_ms <= start_ms:
        return timedelta(0)
    schedule = _schedule(calendar, zone)
    total = schedule.measure(start_ms, until_ms)
    for paused, resumed in spans:
        low = max(paused, start_ms)
        high = until_ms if resumed is None else min(resumed, until_ms)
        if low < high:
            total -= schedule.measure(low, high)
    return timedelta(milliseconds=total)


def business_deadline(
    calendar: BusinessCalendar,
    zone: ZoneInfo,
    started_at: datetime,
    target: timedelta,
    pauses: Sequence[Pause] = (),
    *,
    horizon: timedelta = DEFAULT_HORIZON,
) -> datetime | None:
    """The SLA deadline: the earliest t with ``business_elapsed(started_at, t, pauses) == target``.

    The clock only counts open calendar time outside the pauses. A ``target`` of zero gives
    ``started_at``; a target with sub-millisecond parts is rounded up. None when a pause that is
    still open (resumed at None) is reached before the target is (the deadline is unknown until
    the clock resumes), or when the target is not reached within ``horizon`` after ``started_at``.
    """
    start_ms = _ms(started_at)
    remaining = _duration_ms(target, "SLA target")
    limit = start_ms + _duration_ms(horizon, "horizon")
    spans = _pause_spans(pauses)
    if remaining == 0:
        return _instant(start_ms)
    schedule = _schedule(calendar, zone)
    cursor = start_ms
    for paused, resumed in spans:
        if resumed is not None and resumed <= cursor:
            continue
        if paused > cursor:
            reached, remaining = schedule.advance(cursor, remaining, min(paused, limit))
            if reached is not None:
                return _instant(reached)
            if paused >= limit:
                return None
        if resumed is None or resumed >= limit:
            return None
        cursor = max(cursor, resumed)
    reached, _ = schedule.advance(cursor, remaining, limit)
    return None if reached is None else _instant(reached)


# --- the arithmetic, on integer milliseconds since the epoch ------------------------------------


def _ms(moment: datetime) -> int:
    return (to_instant(moment) - _EPOCH) // _MS


def _instant(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _duration_ms(amount: object, what: str) -> int:
    if not isinstance(amount, timedelta):
        msg = f"{what} must be a timedelta, not {type(amount).__name__}"
        raise TypeError(msg)
    if amount < timedelta(0):
        msg = f"{what} must not be negative ({amount})"
        raise ValueError(msg)
    return -(-amount // _MS)


def _pause_spans(pauses: Sequence[Pause]) -> list[tuple[int, int | None]]:
    """The pauses in ms, sorted and merged; an open pause swallows everything after it."""
    spans: list[tuple[int, int | None]] = []
    for paused_at, resumed_at in pauses:
        paused = _ms(paused_at)
        resumed = None if resumed_at is None else _ms(resumed_at)
        if resumed is not None and resumed < paused:
            msg = f"pause resumed at {resumed_at} before it began at {paused_at}"
            raise ValueError(msg)
        if resumed != paused:
            spans.append((paused, resumed))
    spans.sort(key=lambda span: span[0])
    merged: list[tuple[int, int | None]] = []
    for paused, resumed in spans:
        if merged:
            last_paused, last_resumed = merged[-1]
            if last_resumed is None:
                break
            if paused <= last_resumed:
                end = None if resumed is None else max(resumed, last_resumed)
                merged[-1] = (last_paused, end)
                continue
        merged.append((paused, resumed))
    return merged


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans.sort()
    merged: list[tuple[int, int]] = []
    for low, high in spans:
        if merged and low <= merged[-1][1]:
            if high > merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return merged


def _subtract(spans: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` minus ``holes``; both sorted, disjoint and merged."""
    result: list[tuple[int, int]] = []
    index = 0
    for low, high in spans:
        cursor = low
        while index < len(holes) and holes[index][1] <= cursor:
            index += 1
        probe = index
        while probe < len(holes) and holes[probe][0] < high:
            hole_low, hole_high = holes[probe]
            if hole_low > cursor:
                result.append((cursor, hole_low))
            cursor = max(cursor, hole_high)
            if cursor >= high:
                break
            probe += 1
        if cursor < high:
            result.append((cursor, high))
    return result


@dataclass(frozen=True, slots=True)
class _Day:
    """The open spans of one local day's share of the time line, [lo, hi) in ms."""

    lo: int
    hi: int
    spans: tuple[tuple[int, int], ...]
    total: int


class _Schedule:
    """A calendar in one time zone, expanded day by day on demand (each day once)."""

    def __init__(self, calendar: BusinessCalendar, zone: ZoneInfo) -> None:
        self.zone = zone
        self.always_open = calendar.always_open
        self.weekly: tuple[list[tuple[int, int]], ...] = tuple([] for _ in range(7))
        for hours in calendar.hours:
            self.weekly[hours.weekday].append(_span_ms(hours.start, hours.end))
        self.special: dict[int, list[tuple[int, int]]] = {}
        for special in calendar.special_days:
            span = _span_ms(special.start, special.end)
            self.special.setdefault(special.day.toordinal(), []).append(span)
        self.holidays: dict[int, list[tuple[int, int]]] = {}
        for holiday in calendar.holidays:
            span = holiday.local_span_ms()
            self.holidays.setdefault(holiday.day.toordinal(), []).append(span)
        self.last_special = max(self.special, default=0)
        self.days: dict[int, _Day] = {}

    def _never_open_from(self, ordinal: int) -> bool:
        """Whether no local day from ``ordinal`` on can be open (no hours, no later special day)."""
        return not self.always_open and not any(self.weekly) and self.last_special < ordinal - 2

    def _local_ms(self, ordinal: int, offset_ms: int) -> int:
        """The instant of local wall time ``offset_ms`` after midnight of the date (fold=0)."""
        days, offset_ms = divmod(offset_ms, _DAY_MS)
        wall = datetime.combine(date.fromordinal(ordinal + days), time(0)) + timedelta(
            milliseconds=offset_ms
        )
        utc_offset = wall.replace(tzinfo=self.zone).utcoffset()
        assert utc_offset is not None  # noqa: S101 - a ZoneInfo always has an offset
        return (wall - _EPOCH_NAIVE - utc_offset) // _MS

    def _build(self, ordinal: int) -> _Day:
        lo, hi = self._local_ms(ordinal, 0), self._local_ms(ordinal + 1, 0)
        if self.always_open:
            return _Day(lo, hi, ((lo, hi),), hi - lo)
        opened: list[tuple[int, int]] = []
        for day in range(ordinal - 2, ordinal + 2):
            weekday = date.fromordinal(day).weekday()
            for start, end in (*self.weekly[weekday], *self.special.get(day, ())):
                low = max(self._local_ms(day, start), lo)
                high = min(self._local_ms(day, end), hi)
                if low < high:
                    opened.append((low, high))
        closed: list[tuple[int, int]] = []
        for day in range(ordinal - 2, ordinal + 3):
            for start, end in self.holidays.get(day, ()):
                low = max(self._local_ms(day, start), lo)
                high = min(self._local_ms(day, end), hi)
                if low < high:
                    closed.append((low, high))
        spans = _subtract(_merge(opened), _merge(closed)) if closed else _merge(opened)
        return _Day(lo, hi, tuple(spans), sum(high - low for low, high in spans))

    def day(self, ordinal: int) -> _Day:
        found = self.days.get(ordinal)
        if found is None:
            if len(self.days) >= _MAX_CACHED_DAYS:
                self.days.clear()
            found = self.days[ordinal] = self._build(ordinal)
        return found

    def ordinal_of(self, ms: int) -> int:
        """The local day whose share of the time line holds the instant."""
        ordinal = _instant(ms).astimezone(self.zone).toordinal()
        while ms < self.day(ordinal).lo:
            ordinal -= 1
        while ms >= self.day(ordinal).hi:
            ordinal += 1
        return ordinal

    def measure(self, start: int, end: int) -> int:
        """Open ms in [start, end)."""
        if end <= start:
            return 0
        if self.always_open:
            return end - start
        total = 0
        ordinal = self.ordinal_of(start)
        while True:
            day = self.day(ordinal)
            if day.lo >= end:
                return total
            if start <= day.lo and day.hi <= end:
                total += day.total
            else:
                for low, high in day.spans:
                    overlap = min(high, end) - max(low, start)
                    if overlap > 0:
                        total += overlap
            ordinal += 1

    def segments(self, start: int, end: int) -> list[tuple[int, int]]:
        """The open spans in [start, end), clipped, merged across day boundaries."""
        if end <= start:
            return []
        if self.always_open:
            return [(start, end)]
        result: list[tuple[int, int]] = []
        ordinal = self.ordinal_of(start)
        while True:
            day = self.day(ordinal)
            if day.lo >= end:
                return result
            for span_low, span_high in day.spans:
                low, high = max(span_low, start), min(span_high, end)
                if low >= high:
                    continue
                if result and result[-1][1] == low:
                    result[-1] = (result[-1][0], high)
                else:
                    result.append((low, high))
            ordinal += 1

    def advance(self, start: int, amount: int, limit: int) -> tuple[int | None, int]:
        """Where ``amount`` (> 0) open ms after ``start`` is reached, if at or before ``limit``.

        Returns (the instant, 0), or (None, what is left of the amount at ``limit``).
        """
        if self.always_open:
            if start + amount <= limit:
                return start + amount, 0
            return None, amount - max(0, limit - start)
        ordinal = self.ordinal_of(start)
        while start < limit and not self._never_open_from(ordinal):
            day = self.day(ordinal)
            if day.lo >= limit:
                break
            if day.total < amount and start <= day.lo and day.hi <= limit:
                amount -= day.total
            else:
                for span_low, span_high in day.spans:
                    low, high = max(span_low, start), min(span_high, limit)
                    if low >= high:
                        continue
                    if high - low >= amount:
                        return low + amount, 0
                    amount -= high - low
            ordinal += 1
        return None, amount


@functools.lru_cache(maxsize=256)
def _schedule(calendar: BusinessCalendar, zone: object) -> _Schedule:
    if not isinstance(zone, ZoneInfo):
        msg = f"the site's time zone must be a ZoneInfo, not {type(zone).__name__}"
        raise TypeError(msg)
    return _Schedule(calendar, zone)


# --- holidays from an iCalendar (RFC 5545) file -------------------------------------------------


def _one_line(error: object, limit: int = 200) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def holidays_from_ical(data: bytes | str) -> tuple[Holiday, ...]:
    """The holidays of an iCalendar file (RFC 5545), named by each event's SUMMARY.

    An event whose DTSTART is a date is a full holiday on every date in [DTSTART, DTEND) (one day
    without DTEND or DURATION). An event with date-times is a partial holiday in its own local wall
    time (first and last day partial, full days between); one without DTEND or DURATION lasts no
    time and adds nothing. Recurrences: RRULE with FREQ=YEARLY (COUNT, UNTIL, INTERVAL, and
    BYMONTH with BYMONTHDAY or an ordinal BYDAY such as 4TH), at most 50 occurrences and none
    after 2100; any other RRULE is an error naming the event. RDATE dates and EXDATE are honoured;
    cancelled events are skipped. Sorted by day; duplicates removed.
    """
    from icalendar import Calendar as ICalendar

    try:
        parsed = ICalendar.from_ical(data)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        msg = f"not an iCalendar file: {_one_line(error)}"
        raise InvalidCalendarError(msg) from None
    if parsed.name != "VCALENDAR":
        msg = f"not an iCalendar file: it holds a {parsed.name}, not a VCALENDAR"
        raise InvalidCalendarError(msg)
    found: set[Holiday] = set()
    for event in parsed.walk("VEVENT"):
        label = _one_line(event.get("SUMMARY") or event.get("UID") or "(untitled)", 80)
        try:
            found.update(_event_holidays(event, label))
        except InvalidCalendarError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            msg = f"event {label!r}: {_one_line(error)}"
            raise InvalidCalendarError(msg) from None
    return tuple(sorted(found, key=_holiday_order))


def _holiday_order(holiday: Holiday) -> tuple[date, int, int, str]:
    start_ms, end_ms = holiday.local_span_ms()
    return holiday.day, start_ms, end_ms, holiday.name


def _value(event: Component, key: str) -> Any:
    prop = event.get(key)
    if prop is None:
        return None
    if isinstance(prop, list):
        if len(prop) != 1:
            msg = f"several {key} properties"
            raise InvalidCalendarError(msg)
        prop = prop[0]
    return getattr(prop, "dt", prop)


def _listed(event: Component, key: str) -> list[Any]:
    """The values of a list property (EXDATE, RDATE), however many lines it takes."""
    prop = event.get(key)
    if prop is None:
        return []
    lines = prop if isinstance(prop, list) else [prop]
    return [item.dt for line in lines for item in line.dts]


def _wall(moment: date, zone: Any) -> date:
    """A date, or a date-time as naive wall time in ``zone`` (the event's own zone)."""
    if not isinstance(moment, datetime):
        return moment
    if moment.tzinfo is not None and zone is not None:
        moment = moment.astimezone(zone)
    return moment.replace(tzinfo=None)


def _event_holidays(event: Component, label: str) -> list[Holiday]:
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return []
    name = str(event.get("SUMMARY") or "").strip()
    start = _value(event, "DTSTART")
    if not isinstance(start, date):
        msg = f"event {label!r} has no DTSTART date or date-time"
        raise InvalidCalendarError(msg)
    timed = isinstance(start, datetime)
    zone = start.tzinfo if isinstance(start, datetime) else None
    end = _value(event, "DTEND")
    duration = _value(event, "DURATION")
    if end is None and isinstance(duration, timedelta):
        end = start + duration
    if end is None:
        end = start if timed else start + timedelta(days=1)
    if not isinstance(end, date) or isinstance(end, datetime) != timed:
        msg = f"event {label!r}: DTSTART and DTEND must both be dates or both date-times"
        raise InvalidCalendarError(msg)
    if (
        isinstance(start, datetime)
        and isinstance(end, datetime)
        and (start.tzinfo is None) != (end.tzinfo is None)
    ):
        msg = f"event {label!r}: DTSTART and DTEND mix floating and zoned times"
        raise InvalidCalendarError(msg)
    first, last = _wall(start, zone), _wall(end, zone)
    if last < first:
        msg = f"event {label!r} ends before it starts"
        raise InvalidCalendarError(msg)
    length = last - first
    starts = _occurrences(event, first, label, zone)
    starts.update(_wall(extra, zone) for extra in _listed(event, "RDATE"))
    starts.difference_update(_wall(excluded, zone) for excluded in _listed(event, "EXDATE"))
    if any(isinstance(begin, datetime) != timed for begin in starts):
        msg = f"event {label!r}: RDATE/EXDATE must be of the same kind as DTSTART"
        raise InvalidCalendarError(msg)
    holidays: list[Holiday] = []
    for begin in sorted(starts):
        if isinstance(begin, datetime):
            holidays.extend(_timed_holidays(begin, begin + length, name))
        else:
            days = range(length.days)
            holidays.extend(Holiday(begin + timedelta(days=n), name=name) for n in days)
    return holidays


def _timed_holidays(begin: datetime, finish: datetime, name: str) -> list[Holiday]:
    """A wall-time span as one holiday per local date it touches (partial at either end)."""
    holidays: list[Holiday] = []
    day = begin.date()
    while datetime.combine(day, time(0)) < finish:
        midnight = datetime.combine(day, time(0))
        next_midnight = midnight + timedelta(days=1)
        low, high = max(begin, midnight), min(finish, next_midnight)
        if low < high:
            start = None if low == midnight else low.time()
            end = None if high == next_midnight else high.time()
            if start is None or end is None or start < end:
                holidays.append(Holiday(day, start, end, name))
        day += timedelta(days=1)
    return holidays


_WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
_YEARLY_PARTS = {"FREQ", "COUNT", "UNTIL", "INTERVAL", "WKST", "BYMONTH", "BYMONTHDAY", "BYDAY"}


def _single(rule: dict[str, list[Any]], key: str, label: str) -> Any:
    values = rule.get(key) or []
    if len(values) > 1:
        msg = f"event {label!r}: RRULE with several {key} values is not supported"
        raise InvalidCalendarError(msg)
    return values[0] if values else None


@dataclass(frozen=True)
class _YearlyRule:
    """A supported RRULE: FREQ=YEARLY on one month and day (or nth weekday) of the month."""

    limit: int
    until: date | None
    interval: int
    month: int | None
    month_day: int | None
    nth_weekday: tuple[int, int] | None


def _yearly_rule(rule: dict[str, list[Any]], label: str) -> _YearlyRule:
    freq = str(_single(rule, "FREQ", label) or "").upper()
    unsupported = sorted(set(rule) - _YEARLY_PARTS)
    if freq != "YEARLY" or unsupported:
        what = f"FREQ={freq or '?'}" if freq != "YEARLY" else ", ".join(unsupported)
        msg = f"event {label!r}: only yearly recurrences are supported (RRULE has {what})"
        raise InvalidCalendarError(msg)
    count = _single(rule, "COUNT", label)
    interval = int(_single(rule, "INTERVAL", label) or 1)
    month = _single(rule, "BYMONTH", label)
    month_day = _single(rule, "BYMONTHDAY", label)
    by_day = _single(rule, "BYDAY", label)
    problem = ""
    if interval < 1:
        problem = "INTERVAL must be positive"
    elif count is not None and int(count) < 1:
        problem = "COUNT must be positive"
    elif (month_day is not None or by_day is not None) and month is None:
        problem = "BYMONTHDAY/BYDAY need BYMONTH"
    elif month_day is not None and by_day is not None:
        problem = "both BYMONTHDAY and BYDAY are not supported"
    elif month is not None and not 1 <= int(str(month)) <= 12:
        problem = f"BYMONTH {month} is not a month"
    if problem:
        msg = f"event {label!r}: RRULE {problem}"
        raise InvalidCalendarError(msg)
    return _YearlyRule(
        limit=_ICAL_MAX_OCCURRENCES if count is None else min(int(count), _ICAL_MAX_OCCURRENCES),
        until=_single(rule, "UNTIL", label),
        interval=interval,
        month=None if month is None else int(str(month)),
        month_day=None if month_day is None else int(month_day),
        nth_weekday=None if by_day is None else _parse_nth_weekday(str(by_day), label),
    )


def _occurrences(event: Component, first: date, label: str, zone: Any) -> set[date]:
    """The recurrence starts (wall time) of an event: DTSTART alone, or its yearly RRULE."""
    prop = event.get("RRULE")
    if prop is None:
        return {first}
    if isinstance(prop, list):
        msg = f"event {label!r}: several RRULEs are not supported"
        raise InvalidCalendarError(msg)
    rule = _yearly_rule({str(key).upper(): list(values) for key, values in prop.items()}, label)
    until = rule.until
    if until is not None and isinstance(first, datetime):
        until = _wall(until, zone)
        if not isinstance(until, datetime):
            until = datetime.combine(until, time.max)
    elif until is not None:
        until = _as_date(until)
    month = first.month if rule.month is None else rule.month
    starts: set[date] = set()
    for year in range(first.year, _ICAL_LAST_YEAR + 1, rule.interval):
        day = _yearly_day(year, month, first.day, rule.month_day, rule.nth_weekday)
        if day is None:
            continue
        occurrence = datetime.combine(day, first.time()) if isinstance(first, datetime) else day
        if occurrence < first:
            continue
        if until is not None and occurrence > until:
            break
        starts.add(occurrence)
        if len(starts) >= rule.limit:
            break
    return starts


def _as_date(moment: date) -> date:
    return moment.date() if isinstance(moment, datetime) else moment


def _parse_nth_weekday(text: str, label: str) -> tuple[int, int]:
    code, ordinal = text[-2:].upper(), text[:-2]
    try:
        nth = int(ordinal)
    except ValueError:
        nth = 0
    if code not in _WEEKDAYS or nth == 0 or not -5 <= nth <= 5:
        msg = f"event {label!r}: RRULE BYDAY {text} must be an ordinal weekday such as 4TH or -1MO"
        raise InvalidCalendarError(msg)
    return nth, _WEEKDAYS[code]


def _yearly_day(
    year: int,
    month: int,
    default_day: int,
    month_day: int | None,
    nth_weekday: tuple[int, int] | None,
) -> date | None:
    """The date of a yearly rule in ``year``; None when it does not exist (Feb 29, 5th Monday)."""
    days_in_month = _gregorian.monthrange(year, month)[1]
    if nth_weekday is not None:
        nth, weekday = nth_weekday
        if nth > 0:
            first_weekday = (weekday - date(year, month, 1).weekday()) % 7 + 1
            day = first_weekday + 7 * (nth - 1)
        else:
            last_weekday = date(year, month, days_in_month).weekday()
            day = days_in_month - (last_weekday - weekday) % 7 + 7 * (nth + 1)
    else:
        day = default_day if month_day is None else month_day
        if day < 0:
            day = days_in_month + 1 + day
    if not 1 <= day <= days_in_month:
        return None
    return date(year, month, day)
