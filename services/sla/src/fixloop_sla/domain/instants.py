"""Instants of SLA time: timezone-aware UTC datetimes at millisecond resolution.

Millisecond resolution is what the store keeps (BSON dates), so a clock computed here and the same
clock read back from the store are equal, and deadline comparisons never hinge on microseconds
that were lost on the way. Durations between instants are exact real seconds: a deadline two
hours after a start is two hours later whatever daylight-saving change happens in between.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

RESOLUTION = timedelta(milliseconds=1)


class NaiveDatetimeError(ValueError):
    """A datetime without a time zone: its instant is unknown."""


def to_instant(moment: datetime) -> datetime:
    """``moment`` as a UTC instant truncated to whole milliseconds; rejects naive datetimes."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        msg = f"{moment.isoformat()} has no time zone"
        raise NaiveDatetimeError(msg)
    utc = moment.astimezone(UTC)
    return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)
