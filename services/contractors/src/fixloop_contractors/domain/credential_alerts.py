"""When a contractor is told about a credential running out: the alert moments and what to arm.

A credential with ``expires_on: D`` is valid through D. It has three alert stages, each at the
contractor's *local morning* (default 08:00 in its IANA time zone) of one local date:

- ``expiring_30`` on D-30 and ``expiring_7`` on D-7 (``credential_expiring``);
- ``expired`` on D+1, the first day it is no longer valid (``credential_expired``).

A local wall-clock time is turned into a UTC moment with the zone's rules for that very date, so
the alert is at 08:00 local on both sides of a daylight-saving change. Local times that do not
exist or exist twice are resolved the way RFC 5545 and JavaScript's Temporal ("compatible") do:

- in a gap (clocks jump forward over the morning time) the time is moved forward by the length
  of the gap (02:30 on a day that jumps from 02:00 to 03:00 is 03:30);
- in a fold (clocks go back over it) the earlier of the two moments is taken.

That is what :class:`datetime` does with ``fold=0`` (PEP 495), so :func:`local_moment` relies on
it, and the tests check it.

Arming (:func:`alerts_to_arm`), decided here so it is the same wherever it runs:

- a stage whose moment is still ahead is armed for that moment;
- of the stages whose moment has passed, only the *latest* one is armed, for at once, and only
  because nothing later has passed yet (being the latest passed stage means exactly that). Earlier
  passed stages are dropped: a credential imported 20 days before it expires gets one warning now
  (the 30-day stage, telling it has 20 days left), then the 7-day one on D-7 — never two warnings
  at once. A credential imported already expired gets the ``expired`` alert once, at once;
- a stage armed before for the same expiry date (fired or not) is never armed again, so importing
  the same file twice alerts once. A renewed credential (a new expiry date) starts afresh.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from fixloop_contractors.domain.model import Credential, zone

DEFAULT_MORNING = time(8, 0)
"""The local time of day alerts are due at, unless the service is configured otherwise."""


class AlertStage(StrEnum):
    """One alert of a credential, in the order they fall due."""

    EXPIRING_30 = "expiring_30"
    EXPIRING_7 = "expiring_7"
    EXPIRED = "expired"

    @property
    def offset_days(self) -> int:
        """Local days from the expiry date to the alert's date."""
        return _OFFSETS[self]

    @property
    def is_warning(self) -> bool:
        """A warning before the expiry (not the alert that it has expired)."""
        return self is not AlertStage.EXPIRED


_OFFSETS: dict[AlertStage, int] = {
    AlertStage.EXPIRING_30: -30,
    AlertStage.EXPIRING_7: -7,
    AlertStage.EXPIRED: 1,
}
STAGES: tuple[AlertStage, ...] = tuple(AlertStage)
"""Every stage, in the order their moments fall."""


def local_moment(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC moment when it is ``at`` o'clock on ``day`` in ``tz``.

    A time in a gap is moved forward by the gap's length; of a time in a fold the earlier moment
    is taken (``fold=0``, PEP 495: the offset from before the change is used in both cases).
    """
    return datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class AlertMoment:
    """When one stage of a credential's alerts falls due."""

    stage: AlertStage
    local_date: date
    """The contractor's calendar day of the alert."""
    at: datetime
    """The moment (UTC) of the local morning of ``local_date``."""


def alert_moments(
    credential: Credential, timezone: str, *, morning: time = DEFAULT_MORNING
) -> tuple[AlertMoment, ...]:
    """The credential's alert moments in the contractor's time zone, in stage order (and so in
    time order)."""
    tz = zone(timezone)
    moments = []
    for stage in STAGES:
        day = credential.expires_on + timedelta(days=stage.offset_days)
        moments.append(AlertMoment(stage=stage, local_date=day, at=local_moment(day, morning, tz)))
    return tuple(moments)


@dataclass(frozen=True, slots=True)
class ArmedAlert:
    """An alert to arm: its stage, and when it is to fire."""

    stage: AlertStage
    due_at: datetime
    """The stage's moment, or the arming moment for a stage that has passed (fire at once)."""
    late: bool
    """Its moment had passed when it was armed."""


def alerts_to_arm(
    moments: Iterable[AlertMoment],
    now: datetime,
    *,
    armed: Collection[AlertStage] = (),
) -> tuple[ArmedAlert, ...]:
    """What to arm at ``now`` for one credential (see the module's rule).

    ``armed``: the stages armed before for the same expiry date; they are never armed again.
    """
    ordered = sorted(moments, key=lambda m: m.at)
    passed = [m for m in ordered if m.at <= now]
    chosen: list[ArmedAlert] = []
    if passed:
        latest = passed[-1]
        chosen.append(ArmedAlert(stage=latest.stage, due_at=now, late=True))
    chosen.extend(ArmedAlert(stage=m.stage, due_at=m.at, late=False) for m in ordered if m.at > now)
    return tuple(alert for alert in chosen if alert.stage not in armed)


def days_left(credential: Credential, timezone: str, moment: datetime) -> int:
    """Days of validity left at ``moment`` on the contractor's calendar (0 on the last valid day,
    negative once expired)."""
    return credential.days_left(moment.astimezone(zone(timezone)).date())


__all__ = [
    "DEFAULT_MORNING",
    "STAGES",
    "AlertMoment",
    "AlertStage",
    "ArmedAlert",
    "alert_moments",
    "alerts_to_arm",
    "days_left",
    "local_moment",
]
