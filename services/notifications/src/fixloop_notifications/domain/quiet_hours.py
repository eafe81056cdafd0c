"""Quiet hours: the part of a recipient's day in which non-urgent notices wait.

A quiet period runs from ``start`` to ``end`` in the recipient's local time (default 21:00 to
07:00, crossing midnight; a period such as 12:00 to 14:00 does not cross it; ``start == end``
means never quiet). A notice that falls into it is held until the period ends.

Periods are judged by instants, not by wall-clock readings, so they stay right across daylight
saving time changes (PEP 495):

- a local time that does not exist (skipped by a change, e.g. 02:30 in Berlin on the last Sunday
  of March) resolves to the first instant the local clock reads later than it: the moment the
  clock jumps (03:00 local);
- a local time that occurs twice (e.g. 02:30 in Berlin on the last Sunday of October) resolves to
  its first occurrence; the repeated hour after the period ended is not quiet again.

Pure: no clock of its own, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_START = time(21, 0)
DEFAULT_END = time(7, 0)

_ONE_SECOND = timedelta(seconds=1)


class InvalidTimeZone(ValueError):  # noqa: N818 - the domain's word
    """Not an IANA time zone name."""


def zone_of(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; :class:`InvalidTimeZone` if there is none such."""
    try:
        return ZoneInfo(name)
    except (ValueError, LookupError) as exc:  # ZoneInfoNotFoundError is a KeyError
        msg = f"unknown time zone {name!r}"
        raise InvalidTimeZone(msg) from exc


def _local_wall(moment: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall-clock reading of ``moment`` in ``zone``."""
    return moment.astimezone(zone).replace(tzinfo=None)


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the local clock in ``zone`` first reads ``day`` ``at`` or later.

    An existing local time is that instant (its first occurrence when the clock goes back); a
    local time skipped by a change is the instant of the change.
    """
    wall = datetime.combine(day, at.replace(tzinfo=None))
    earlier_offset = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _local_wall(earlier_offset, zone) == wall:
        return earlier_offset
    # In a gap: fold=1 reads it with the offset after the change (an instant before the change),
    # fold=0 with the offset before (after the change). The change lies in between.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = earlier_offset
    if before > after:  # pragma: no cover - defensive: never so for a gap
        before, after = after, before
    while after - before > _ONE_SECOND:
        middle = before + (after - before) / 2
        middle = middle.replace(microsecond=0)
        if middle <= before:
            middle = before + _ONE_SECOND
        if _local_wall(middle, zone) >= wall:
            after = middle
        else:
            before = middle
    return after


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily quiet period in the recipient's local time, from ``start`` to ``end``."""

    start: time = DEFAULT_START
    end: time = DEFAULT_END

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            msg = "quiet hours are local wall-clock times, without a time zone"
            raise ValueError(msg)

    @property
    def never_quiet(self) -> bool:
        return self.start == self.end

    @property
    def crosses_midnight(self) -> bool:
        return self.start > self.end

    def period_of(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The quiet period that starts on local ``day``, as UTC instants ``[begins, ends)``."""
        ends_on = day + timedelta(days=1) if self.crosses_midnight else day
        return local_instant(day, self.start, zone), local_instant(ends_on, self.end, zone)

    def held_until(self, now: datetime, timezone: str) -> datetime | None:
        """None when ``now`` is outside the quiet period in ``timezone``; else the UTC instant
        the period ends (when a held notice goes out).

        ``now`` must be timezone-aware; raises :class:`InvalidTimeZone` for an unknown zone.
        """
        if now.tzinfo is None or now.utcoffset() is None:
            msg = "now must be timezone-aware"
            raise ValueError(msg)
        if self.never_quiet:
            return None
        zone = zone_of(timezone)
        moment = now.astimezone(UTC)
        today = _local_wall(moment, zone).date()
        for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
            begins, ends = self.period_of(day, zone)
            if begins <= moment < ends:
                return ends
        return None

    def is_quiet(self, now: datetime, timezone: str) -> bool:
        return self.held_until(now, timezone) is not None


DEFAULT_QUIET_HOURS = QuietHours()
"""21:00 to 07:00 local: what applies to a recipient who set nothing else."""


def held_until(
    now: datetime, timezone: str, quiet_hours: QuietHours = DEFAULT_QUIET_HOURS
) -> datetime | None:
    """:meth:`QuietHours.held_until` of ``quiet_hours`` (default 21:00 to 07:00)."""
    return quiet_hours.held_until(now, timezone)


def parse_local_time(value: str) -> time:
    """``HH:MM`` (24-hour) as a time; ValueError otherwise."""
    hours, sep, minutes = value.partition(":")
    if not sep or len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        msg = f"not a local time HH:MM: {value!r}"
        raise ValueError(msg)
    return time(int(hours), int(minutes))


def format_local_time(value: time) -> str:
    return value.strftime("%H:%M")


__all__ = [
    "DEFAULT_QUIET_HOURS",
    "InvalidTimeZone",
    "QuietHours",
    "format_local_time",
    "held_until",
    "local_instant",
    "parse_local_time",
    "zone_of",
]
