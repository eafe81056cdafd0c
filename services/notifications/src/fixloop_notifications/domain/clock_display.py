"""Moments shown to people: in a given IANA time zone, in the reader's date and time style.

The styles are written out here (month and weekday names, field order, 12/24-hour clock)
for the locales Fixloop writes to; any other locale falls back to its language, then English.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fixloop_notifications.domain.locales import resolve_locale


@dataclass(frozen=True)
class DateTimeStyle:
    """How one locale writes a date and time."""

    months: tuple[str, ...]
    weekdays: tuple[str, ...]
    """Monday first, like ``datetime.weekday()``."""
    pattern: str
    """Fields: ``{weekday} {day} {month} {year} {time} {zone}``."""
    twelve_hour: bool = False
    first_of_month: str | None = None
    """How day 1 is written when it differs from ``1`` (French ``1er``)."""
    zone_names: Mapping[str, str] = field(default_factory=dict)
    """Local names of zone abbreviations (German ``MEZ`` for ``CET``)."""


_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DE_MONTHS = (
    "Januar", "Februar", "März", "April", "Mai", "Juni",
    "Juli", "August", "September", "Oktober", "November", "Dezember",
)  # fmt: skip
_DE_WEEKDAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
_DE_ZONES = {"CET": "MEZ", "CEST": "MESZ"}
_FR_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip
_FR_WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")

STYLES: Mapping[str, DateTimeStyle] = {
    "en": DateTimeStyle(_EN_MONTHS, _EN_WEEKDAYS, "{weekday}, {day} {month} {year}, {time} {zone}"),
    "en-US": DateTimeStyle(
        _EN_MONTHS,
        _EN_WEEKDAYS,
        "{weekday}, {month} {day}, {year}, {time} {zone}",
        twelve_hour=True,
    ),
    "de": DateTimeStyle(
        _DE_MONTHS,
        _DE_WEEKDAYS,
        "{weekday}, {day}. {month} {year}, {time} Uhr {zone}",
        zone_names=_DE_ZONES,
    ),
    "de-AT": DateTimeStyle(
        ("Jänner", *_DE_MONTHS[1:]),
        _DE_WEEKDAYS,
        "{weekday}, {day}. {month} {year}, {time} Uhr {zone}",
        zone_names=_DE_ZONES,
    ),
    "fr": DateTimeStyle(
        _FR_MONTHS,
        _FR_WEEKDAYS,
        "{weekday} {day} {month} {year} à {time} {zone}",
        first_of_month="1er",
    ),
}


def style_for(locale: str) -> DateTimeStyle:
    """The date style of ``locale``: exact -> language -> English."""
    return STYLES[resolve_locale(locale, STYLES)]


def _utc_offset_label(offset: timedelta | None) -> str:
    minutes = int((offset or timedelta()).total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def zone_label(local: datetime, style: DateTimeStyle) -> str:
    """The short name of the zone at that moment (``CET``, ``EDT``), or its UTC offset."""
    abbreviation = local.tzname() or ""
    if not abbreviation or abbreviation[0] in "+-" or abbreviation[0].isdigit():
        return _utc_offset_label(local.utcoffset())
    return style.zone_names.get(abbreviation, abbreviation)


def _clock(local: datetime, style: DateTimeStyle) -> str:
    if not style.twelve_hour:
        return f"{local.hour:02d}:{local.minute:02d}"
    hour = local.hour % 12 or 12
    return f"{hour}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def format_moment(moment: datetime, zone: str, locale: str) -> str:
    """``moment`` as local time in ``zone``, written the way ``locale`` writes it.

    >>> format_moment(datetime(2026, 3, 3, 13, 5, tzinfo=UTC), "Europe/Berlin", "de")
    'Dienstag, 3. März 2026, 14:05 Uhr MEZ'
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        msg = "a moment shown to people must be timezone-aware"
        raise ValueError(msg)
    local = moment.astimezone(ZoneInfo(zone))
    style = style_for(locale)
    day = style.first_of_month if local.day == 1 and style.first_of_month else str(local.day)
    return style.pattern.format(
        weekday=style.weekdays[local.weekday()],
        day=day,
        month=style.months[local.month - 1],
        year=local.year,
        time=_clock(local, style),
        zone=zone_label(local, style),
    )
