"""On-call rotas: when a contractor may be offered work, on its own wall clock.

A rota has a **primary** layer (the contractor's normal working hours) and an optional **backup**
layer (its emergency or night service, say). Each layer is a set of weekly windows in the
contractor's IANA time zone plus exceptions by date. Windows are read on the local wall clock, so
"Monday to Friday, 08:00 to 18:00" stays 08:00 to 18:00 across a daylight-saving change; a window
that spans the change (22:00 to 06:00 on the night the clocks go forward) is an hour shorter in
real time, as the contractor's own night is.

On a date listed as an exception, a layer is on call only during that exception's hours (none: off
all day, as on a public holiday); every other date follows the weekly windows. Times are taken to
the second.

A contractor without a rota is on call around the clock in its primary layer;
:meth:`OnCallRota.around_the_clock` says the same explicitly.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from enum import IntEnum, StrEnum
from typing import NamedTuple

SECONDS_PER_DAY = 24 * 3600
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY


class Weekday(IntEnum):
    """Days of the week as :meth:`datetime.date.weekday` numbers them (Monday is 0)."""

    MONDAY = 0
    TUESDAY = 1
    WEDNESDAY = 2
    THURSDAY = 3
    FRIDAY = 4
    SATURDAY = 5
    SUNDAY = 6

    @property
    def short(self) -> str:
        return self.name[:3].title()


WORKING_DAYS = tuple(Weekday)[:5]
"""Monday to Friday."""
EVERY_DAY = tuple(Weekday)


class OnCall(StrEnum):
    """Which layer of its rota makes a contractor available at a moment."""

    PRIMARY = "primary"
    BACKUP = "backup"


def second_of_day(moment: time) -> int:
    """Seconds since local midnight (microseconds dropped)."""
    return moment.hour * 3600 + moment.minute * 60 + moment.second


class WallClock(NamedTuple):
    """A moment as a local wall clock shows it: the date, and how far into the week and the day."""

    day: date
    second_of_week: int
    """Seconds since Monday 00:00:00 local time."""
    second_of_day: int
    """Seconds since 00:00:00 local time."""

    @classmethod
    def of(cls, moment: datetime, zone: tzinfo) -> WallClock:
        """The wall clock in ``zone`` at ``moment`` (an aware datetime)."""
        return cls.reading(moment.astimezone(zone))

    @classmethod
    def reading(cls, local: datetime) -> WallClock:
        """The wall clock of a datetime already in the local zone."""
        of_day = local.hour * 3600 + local.minute * 60 + local.second
        return cls(local.date(), local.weekday() * SECONDS_PER_DAY + of_day, of_day)

    def describe(self) -> str:
        """``Sun 2026-03-29 03:30``."""
        minutes = self.second_of_day // 60
        weekday = Weekday(self.day.weekday()).short
        return f"{weekday} {self.day.isoformat()} {minutes // 60:02d}:{minutes % 60:02d}"


def _naive(moment: time, what: str) -> None:
    if moment.tzinfo is not None:
        msg = f"{what} is a local wall-clock time: give it without a time zone, not {moment}"
        raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class WeeklyWindow:
    """A span of every week on the local wall clock: from ``start`` on ``start_day`` up to (not
    including) ``end`` on ``end_day``.

    It may run past Sunday midnight into the next week (Saturday 22:00 to Monday 06:00); a window
    that ends where it starts covers the whole week.
    """

    start_day: Weekday
    start: time
    end_day: Weekday
    end: time

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_day", Weekday(self.start_day))
        object.__setattr__(self, "end_day", Weekday(self.end_day))
        _naive(self.start, "a window's start")
        _naive(self.end, "a window's end")

    @classmethod
    def whole_week(cls) -> WeeklyWindow:
        """Around the clock, every day (7x24)."""
        return cls(Weekday.MONDAY, time(0), Weekday.MONDAY, time(0))

    @classmethod
    def daily(
        cls, start: time, end: time, days: Iterable[Weekday] = EVERY_DAY
    ) -> tuple[WeeklyWindow, ...]:
        """The same hours on each of ``days``: an ``end`` at or before ``start`` runs into the next
        day (22:00 to 06:00), and an ``end`` equal to ``start`` makes 24 hours."""
        next_day = end <= start
        return tuple(
            cls(Weekday(day), start, Weekday((day + 1) % 7) if next_day else Weekday(day), end)
            for day in sorted(set(days))
        )

    @property
    def span(self) -> tuple[int, int]:
        """Start and end as seconds since Monday 00:00:00."""
        return (
            self.start_day * SECONDS_PER_DAY + second_of_day(self.start),
            self.end_day * SECONDS_PER_DAY + second_of_day(self.end),
        )

    def contains(self, second_of_week: int) -> bool:
        start, end = self.span
        if start < end:
            return start <= second_of_week < end
        if start > end:  # past the end of the week into the next
            return second_of_week >= start or second_of_week < end
        return True

    def describe(self) -> str:
        return (
            f"{self.start_day.short} {self.start.strftime('%H:%M')}"
            f"-{self.end_day.short} {self.end.strftime('%H:%M')}"
        )


@dataclass(frozen=True, slots=True)
class DayException:
    """A date on which a rota layer keeps other hours than its weekly windows.

    ``hours`` are (start, end) pairs on that local date, each end after its start; an end of
    00:00 is midnight at the end of the day. No hours: the layer is off all day (a public holiday,
    a company closure).
    """

    day: date
    hours: tuple[tuple[time, time], ...] = ()

    def __post_init__(self) -> None:
        for start, end in self.hours:
            _naive(start, "an exception's start")
            _naive(end, "an exception's end")
            if end != time(0) and end <= start:
                msg = f"hours on {self.day.isoformat()} end at {end} before they start at {start}"
                raise ValueError(msg)

    @classmethod
    def off(cls, day: date) -> DayException:
        """Not on call at all on ``day``."""
        return cls(day)

    @classmethod
    def all_day(cls, day: date) -> DayException:
        """On call from midnight to midnight on ``day``."""
        return cls(day, ((time(0), time(0)),))

    @property
    def spans(self) -> tuple[tuple[int, int], ...]:
        """The hours as seconds since local midnight (the end of the day is 86,400)."""
        return tuple(
            (second_of_day(start), second_of_day(end) or SECONDS_PER_DAY)
            for start, end in self.hours
        )


def _boundaries(spans: Iterable[tuple[int, int]], period: int) -> tuple[int, ...]:
    """Spans within ``[0, period)`` (a start after its end wraps round, equal start and end is
    the whole period) merged into sorted boundaries ``start, end, start, end, ...``: a moment is
    inside iff an odd number of boundaries are at or before it."""
    pieces: list[tuple[int, int]] = []
    for start, end in spans:
        if start < end:
            pieces.append((start, end))
        elif start > end:
            pieces.extend(((start, period), (0, end)))
        else:
            pieces.append((0, period))
    merged: list[list[int]] = []
    for start, end in sorted(pieces):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple(bound for piece in merged for bound in piece)


@dataclass(frozen=True, slots=True)
class RotaLayer:
    """One layer of a rota: weekly windows, and exceptions by date that replace them that day."""

    windows: tuple[WeeklyWindow, ...]
    exceptions: tuple[DayException, ...] = ()
    _week: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _days: dict[date, tuple[int, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        days: dict[date, tuple[int, ...]] = {}
        for exception in self.exceptions:
            if exception.day in days:
                msg = f"two exceptions for {exception.day.isoformat()} in one rota layer"
                raise ValueError(msg)
            days[exception.day] = _boundaries(exception.spans, SECONDS_PER_DAY)
        object.__setattr__(
            self, "_week", _boundaries((w.span for w in self.windows), SECONDS_PER_WEEK)
        )
        object.__setattr__(self, "_days", days)

    @classmethod
    def around_the_clock(cls) -> RotaLayer:
        return cls((WeeklyWindow.whole_week(),))

    def has_exception(self, day: date) -> bool:
        """Whether ``day`` (a local date) keeps other hours than the weekly windows."""
        return day in self._days

    def on_call(self, clock: WallClock) -> bool:
        """Whether this layer is on call at the local wall-clock reading ``clock``."""
        if self._days:
            hours = self._days.get(clock.day)
            if hours is not None:
                return bisect_right(hours, clock.second_of_day) % 2 == 1
        return bisect_right(self._week, clock.second_of_week) % 2 == 1


@dataclass(frozen=True, slots=True)
class OnCallRota:
    """When a contractor may be offered work, in its own time zone: the primary layer first."""

    primary: RotaLayer
    backup: RotaLayer | None = None
    _layers: tuple[tuple[RotaLayer, OnCall], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        layers = [(self.primary, OnCall.PRIMARY)]
        if self.backup is not None:
            layers.append((self.backup, OnCall.BACKUP))
        object.__setattr__(self, "_layers", tuple(layers))

    @classmethod
    def around_the_clock(cls) -> OnCallRota:
        """Primary layer on call 7x24."""
        return cls(RotaLayer.around_the_clock())

    def layer_at(self, clock: WallClock) -> OnCall | None:
        """The layer on call at the local reading ``clock`` (primary if both are), or None."""
        # RotaLayer.on_call for each layer, inlined: this runs for every candidate of a decision.
        for layer, which in self._layers:
            exceptional = layer._days.get(clock.day) if layer._days else None
            if exceptional is None:
                if bisect_right(layer._week, clock.second_of_week) % 2:
                    return which
            elif bisect_right(exceptional, clock.second_of_day) % 2:
                return which
        return None

    def on_call_at(self, moment: datetime, zone: tzinfo) -> OnCall | None:
        """The layer on call at ``moment`` (an aware datetime) in the contractor's ``zone``."""
        return self.layer_at(WallClock.of(moment, zone))


__all__ = [
    "EVERY_DAY",
    "SECONDS_PER_DAY",
    "SECONDS_PER_WEEK",
    "WORKING_DAYS",
    "DayException",
    "OnCall",
    "OnCallRota",
    "RotaLayer",
    "WallClock",
    "Weekday",
    "WeeklyWindow",
    "second_of_day",
]
