"""Quality alerts: work whose own facts say something may be wrong, for an operator to look at.

- **Too fast** (:attr:`AlertKind.TOO_FAST_COMPLETION`): a completion whose work took at most
  :attr:`QualityRules.too_fast_ratio` (one third) of the standard time for the order's category
  and equipment class (:data:`DEFAULT_STANDARD_MINUTES`, configurable): a 30-minute procedure
  done in 10 minutes. The work's time runs from the contractor's arrival on site (the first
  arrival after the job's previous completion) to the completion; with no arrival recorded, the
  labour time the contractor reported is taken. An order whose category and class have no
  standard time is not judged.
- **Repeat repair** (:attr:`AlertKind.REPEAT_REPAIR`): a breakdown order on the same equipment at
  the same site of the same tenant received within :attr:`QualityRules.repeat_window` (30 days)
  after an earlier job there was completed, or an order that is a follow-up of an earlier one
  (the orders service's ``follow_up_of``): the earlier repair did not hold. Only the job
  completed last before the later order's receipt is called back; the alert names the later
  order and the earlier job's contractor, whose first-time fix it costs.

Every alert's id is made from what it is about (its kind, the orders, the completion), so a
finding made again (a redelivered event, the same facts seen from the other order) is the same
alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from fixloop_contractors.domain.performance import JobRecord
from fixloop_shared.vocabulary import Category

ANY_EQUIPMENT = "*"
"""The standard time of a category for every equipment class not listed."""

DEFAULT_STANDARD_MINUTES: Mapping[Category, Mapping[str, int]] = MappingProxyType(
    {
        Category.BREAKDOWN: {ANY_EQUIPMENT: 60, "hvac": 90, "refrigeration": 90, "elevator": 120},
        Category.PREVENTIVE: {ANY_EQUIPMENT: 45, "hvac": 60, "refrigeration": 60, "elevator": 90},
        Category.INSPECTION: {ANY_EQUIPMENT: 30, "elevator": 45},
        Category.INSTALLATION: {ANY_EQUIPMENT: 120},
        Category.SAFETY: {ANY_EQUIPMENT: 30},
    }
)
"""Standard minutes of work on site, per category and equipment class."""

DEFAULT_TOO_FAST_RATIO = 1 / 3
DEFAULT_REPEAT_WINDOW = timedelta(days=30)
REPEAT_CATEGORIES = frozenset({Category.BREAKDOWN})
"""Orders that are a repair: one soon after an earlier job calls that job back (a preventive
visit or an inspection on the same equipment does not)."""

_ALERT_IDS = uuid.UUID("7b0e8c36-1f5d-4a55-9a3f-2d8f3c7e9b41")
"""Namespace of the alerts' name-based ids."""
_SUMMARY_LIMIT = 500


class AlertKind(StrEnum):
    TOO_FAST_COMPLETION = "too_fast_completion"
    REPEAT_REPAIR = "repeat_repair"


class DurationBasis(StrEnum):
    """Where a job's working time was taken from."""

    ON_SITE = "on_site_to_completed"
    """From the arrival on site to the completion, both as reported in the order's steps."""
    REPORTED_LABOUR = "reported_labour"
    """The labour minutes of the completion report (no arrival was recorded)."""


@dataclass(frozen=True, slots=True)
class StandardTimes:
    """Standard minutes per category and equipment class (:data:`ANY_EQUIPMENT`: the rest)."""

    minutes: Mapping[Category, Mapping[str, int]] = field(
        default_factory=lambda: {c: dict(t) for c, t in DEFAULT_STANDARD_MINUTES.items()}
    )

    def __post_init__(self) -> None:
        for category, table in self.minutes.items():
            for equipment_class, minutes in table.items():
                if minutes <= 0:
                    msg = f"standard time of {category}/{equipment_class} must be positive"
                    raise ValueError(msg)

    def of(self, category: Category, equipment_class: str) -> timedelta | None:
        """The standard time of such work (None: none is set)."""
        table = self.minutes.get(category) or {}
        minutes = table.get(equipment_class, table.get(ANY_EQUIPMENT))
        return None if minutes is None else timedelta(minutes=minutes)


@dataclass(frozen=True, slots=True)
class QualityRules:
    standard_times: StandardTimes = field(default_factory=StandardTimes)
    too_fast_ratio: float = DEFAULT_TOO_FAST_RATIO
    """Work done in at most this share of its standard time is flagged."""
    repeat_window: timedelta = DEFAULT_REPEAT_WINDOW

    def __post_init__(self) -> None:
        if not 0 < self.too_fast_ratio <= 1:
            msg = f"the too-fast ratio is in (0, 1], not {self.too_fast_ratio}"
            raise ValueError(msg)
        if self.repeat_window <= timedelta(0):
            msg = "the repeat window must be positive"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class TooFastEvidence:
    completed_at: datetime
    on_site_at: datetime | None
    """The arrival the time was measured from (None: the reported labour time was taken)."""
    took: timedelta
    basis: DurationBasis
    reported_labour_minutes: int
    standard: timedelta
    ratio: float
    """The share of the standard time at or below which work is flagged."""

    @property
    def share(self) -> float:
        """The work's time as a share of the standard time."""
        return self.took / self.standard


@dataclass(frozen=True, slots=True)
class RepeatRepairEvidence:
    earlier_work_order_id: str
    earlier_completed_at: datetime
    received_at: datetime
    """When the later order was received."""
    follow_up: bool
    """The later order is an explicit follow-up of the earlier one."""
    window: timedelta

    @property
    def since_completion(self) -> timedelta:
        return max(timedelta(0), self.received_at - self.earlier_completed_at)


Evidence = TooFastEvidence | RepeatRepairEvidence


def _minutes(span: timedelta) -> str:
    minutes = span.total_seconds() / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


@dataclass(frozen=True, slots=True)
class QualityAlert:
    """A finding about one work order's work, with its evidence."""

    alert_id: str
    kind: AlertKind
    tenant: str
    work_order_id: str
    contractor_id: str | None
    """Whose work is in question (a repeat repair: the earlier job's contractor)."""
    site_id: str
    equipment_id: str
    equipment_class: str
    category: Category
    evidence: Evidence

    @property
    def summary(self) -> str:
        """The finding in one sentence."""
        evidence = self.evidence
        if isinstance(evidence, TooFastEvidence):
            how = (
                "on site to completion"
                if evidence.basis is DurationBasis.ON_SITE
                else "reported labour"
            )
            text = (
                f"Work order {self.work_order_id} was completed in {_minutes(evidence.took)} "
                f"({how}), {evidence.share:.0%} of the {_minutes(evidence.standard)} standard "
                f"for {self.category.value} work on {self.equipment_class}"
            )
        else:
            days = evidence.since_completion.total_seconds() / 86_400
            why = "a follow-up of" if evidence.follow_up else "a repeat repair after"
            by = f" by {self.contractor_id}" if self.contractor_id else ""
            text = (
                f"Work order {self.work_order_id} on equipment {self.equipment_id} at site "
                f"{self.site_id} is {why} work order {evidence.earlier_work_order_id}, "
                f"completed{by} {days:.1f} days before"
            )
        return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 1] + "…"


def alert_id(kind: AlertKind, *about: str) -> str:
    """The id of the alert of ``kind`` about these things (the same finding, the same id)."""
    return str(uuid.uuid5(_ALERT_IDS, ":".join((kind.value, *about))))


def too_fast_completions(job: JobRecord, rules: QualityRules) -> tuple[QualityAlert, ...]:
    """An alert for each completion of the job done in at most the too-fast share of its
    standard time (none for a cancelled job, or one whose order or standard time is unknown)."""
    order = job.order
    if order is None or job.cancelled:
        return ()
    standard = rules.standard_times.of(order.category, order.equipment_class)
    if standard is None:
        return ()
    limit = standard * rules.too_fast_ratio
    alerts: list[QualityAlert] = []
    previous: datetime | None = None
    for completion in job.completions:
        done = completion.completed_at
        arrival = job.arrival_before(done, after=previous)
        previous = done
        if arrival is not None:
            took, basis = done - arrival, DurationBasis.ON_SITE
        else:
            took = timedelta(minutes=completion.labour_minutes)
            basis = DurationBasis.REPORTED_LABOUR
        if took > limit:
            continue
        alerts.append(
            QualityAlert(
                alert_id=alert_id(
                    AlertKind.TOO_FAST_COMPLETION, job.work_order_id, done.isoformat()
                ),
                kind=AlertKind.TOO_FAST_COMPLETION,
                tenant=job.tenant,
                work_order_id=job.work_order_id,
                contractor_id=job.contractor_id,
                site_id=order.site_id,
                equipment_id=order.equipment_id,
                equipment_class=order.equipment_class,
                category=order.category,
                evidence=TooFastEvidence(
                    completed_at=done,
                    on_site_at=arrival,
                    took=took,
                    basis=basis,
                    reported_labour_minutes=completion.labour_minutes,
                    standard=standard,
                    ratio=rules.too_fast_ratio,
                ),
            )
        )
    return tuple(alerts)


class RepeatRepair(NamedTuple):
    """A later order that calls an earlier job back, and its alert."""

    earlier: JobRecord
    later: JobRecord
    alert: QualityAlert


def _same_equipment(a: JobRecord, b: JobRecord) -> bool:
    if a.order is None or b.order is None:
        return False
    return (a.tenant, a.order.site_id, a.order.equipment_id) == (
        b.tenant,
        b.order.site_id,
        b.order.equipment_id,
    )


def _last_completion_before(job: JobRecord, moment: datetime) -> datetime | None:
    done = [c.completed_at for c in job.completions if c.completed_at <= moment]
    return done[-1] if done else None


def repeat_repairs(jobs: Iterable[JobRecord], rules: QualityRules) -> tuple[RepeatRepair, ...]:
    """Every later order among ``jobs`` that calls an earlier one back (the jobs of one piece of
    equipment; others, and jobs whose order is unknown, are left out)."""
    ordered = sorted(
        ((j.order, j) for j in jobs if j.order is not None),
        key=lambda pair: (pair[0].received_at, pair[1].work_order_id),
    )
    known = [job for _, job in ordered]
    by_id = {j.work_order_id: j for j in known}
    found: list[RepeatRepair] = []
    for order, later in ordered:
        earlier: JobRecord | None = None
        done: datetime | None = None
        follow_up = False
        named = by_id.get(order.follow_up_of or "")
        if named is not None and named is not later and not named.cancelled:
            done = _last_completion_before(named, order.received_at)
            if done is None and named.completions:
                done = named.completions[-1].completed_at
            earlier, follow_up = (named, True) if done is not None else (None, False)
        if earlier is None and order.category in REPEAT_CATEGORIES:
            candidates = [
                (finished, candidate.work_order_id, candidate)
                for candidate in known
                if candidate is not later
                and not candidate.cancelled
                and _same_equipment(candidate, later)
                and (finished := _last_completion_before(candidate, order.received_at)) is not None
                and order.received_at - finished <= rules.repeat_window
            ]
            if candidates:
                done, _, earlier = max(candidates, key=lambda c: (c[0], c[1]))
        if earlier is None or done is None:
            continue
        found.append(
            RepeatRepair(
                earlier=earlier,
                later=later,
                alert=QualityAlert(
                    alert_id=alert_id(
                        AlertKind.REPEAT_REPAIR, earlier.work_order_id, later.work_order_id
                    ),
                    kind=AlertKind.REPEAT_REPAIR,
                    tenant=later.tenant,
                    work_order_id=later.work_order_id,
                    contractor_id=earlier.contractor_id,
                    site_id=order.site_id,
                    equipment_id=order.equipment_id,
                    equipment_class=order.equipment_class,
                    category=order.category,
                    evidence=RepeatRepairEvidence(
                        earlier_work_order_id=earlier.work_order_id,
                        earlier_completed_at=done,
                        received_at=order.received_at,
                        follow_up=follow_up,
                        window=rules.repeat_window,
                    ),
                ),
            )
        )
    return tuple(found)


__all__ = [
    "ANY_EQUIPMENT",
    "DEFAULT_REPEAT_WINDOW",
    "DEFAULT_STANDARD_MINUTES",
    "DEFAULT_TOO_FAST_RATIO",
    "REPEAT_CATEGORIES",
    "AlertKind",
    "DurationBasis",
    "Evidence",
    "QualityAlert",
    "QualityRules",
    "RepeatRepair",
    "RepeatRepairEvidence",
    "StandardTimes",
    "TooFastEvidence",
    "alert_id",
    "repeat_repairs",
    "too_fast_completions",
]
