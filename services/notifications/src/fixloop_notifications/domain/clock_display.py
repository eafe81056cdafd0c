"""Moments, days and time windows shown to people, in the reader's time zone and style.

Every moment is converted to the recipient's IANA time zone and written with Babel (CLDR data)
in the reader's locale, followed by the zone's name at that moment: its local abbreviation where
the locale has one (``MEZ``/``MESZ`` in German, ``EDT`` in English), else the localized UTC
offset (``GMT+02:00``, ``UTC+02:00`` in French), so a change of daylight-saving time is visible.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_interval, format_skeleton, format_time
from babel.dates import get_timezone_name as _zone_name

from fixloop_notifications.domain.locales import babel_locale

Width = Literal["short", "medium", "long", "full"]


def _local(moment: datetime, zone: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        msg = "a moment shown to people must be timezone-aware"
        raise ValueError(msg)
    return moment.astimezone(ZoneInfo(zone))


def _uses_twelve_hours(locale: Locale) -> bool:
    pattern = locale.time_formats["short"].pattern
    return "h" in pattern or "K" in pattern


def zone_label(local: datetime, locale: Locale) -> str:
    """The zone's name at that local moment: ``MEZ``, ``EDT``, or ``GMT+02:00``."""
    name = _zone_name(local, "short", locale=locale)
    if name and name[0].isalpha() and " " not in name:
        return name
    return format_time(local, "ZZZZ", locale=locale)


def _clock(local: datetime, locale: Locale) -> str:
    return format_time(local, "short", locale=locale)


def _day(local: datetime | date, locale: Locale, width: Width) -> str:
    if width == "medium":
        # The medium date with the weekday, e.g. "Tue, Jan 13, 2026" / "Di., 13. Jan. 2026".
        return format_skeleton("yMMMEd", local, locale=locale)
    return format_date(local, width, locale=locale)


def _join(day: str, clock: str, locale: Locale, width: Width) -> str:
    glue = str(locale.datetime_formats[width])
    return glue.replace("{1}", day).replace("{0}", clock)


def format_moment(moment: datetime, zone: str, locale: str, width: Width = "medium") -> str:
    """``moment`` as local time in ``zone``, written the way ``locale`` writes it, with the
    zone's name.

    >>> format_moment(datetime(2026, 3, 3, 13, 5, tzinfo=UTC), "Europe/Berlin", "de")
    'Di., 3. März 2026, 14:05 MEZ'
    """
    local = _local(moment, zone)
    babel = babel_locale(locale)
    clock = f"{_clock(local, babel)} {zone_label(local, babel)}"
    return _join(_day(local, babel, width), clock, babel, width)


def format_day(day: date, locale: str, width: Width = "medium") -> str:
    """A calendar day (no time zone involved), e.g. ``Sat, Feb 14, 2026``."""
    babel = babel_locale(locale)
    return _day(day, babel, width)


def format_window(start: datetime, end: datetime, zone: str, locale: str) -> str:
    """A time window as "date, start to end, zone" when it lies within one local day (``Do., 15.
    Jan. 2026, 09:00\u201312:00 Uhr MEZ``), else as two moments joined by a dash."""
    local_start, local_end = _local(start, zone), _local(end, zone)
    babel = babel_locale(locale)
    same_zone = zone_label(local_start, babel) == zone_label(local_end, babel)
    if local_start.date() != local_end.date() or not same_zone or end < start:
        first = format_moment(start, zone, locale)
        return f"{first} \u2013 {format_moment(end, zone, locale)}"
    skeleton = "hm" if _uses_twelve_hours(babel) else "Hm"
    times = format_interval(local_start, local_end, skeleton, locale=babel)
    clock = f"{times} {zone_label(local_start, babel)}"
    return _join(_day(local_start, babel, "medium"), clock, babel, "medium")


__all__ = ["Width", "format_day", "format_moment", "format_window", "zone_label"]
