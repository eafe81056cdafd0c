"""SLA compliance figures and the clocks at risk, from the recorded cycles of milestone clocks.

A milestone clock of a work order runs in cycles; each cycle ends met, missed or cancelled
(:class:`ClosedCycle`), or is still open, running or paused (:class:`OpenCycle`).

:func:`summarize` counts, per group (contractor, equipment class, tenant or clock) and clock:

* ``met``, ``missed``, ``cancelled``: closed cycles by outcome;
* ``running_breached``: open cycles already past their deadline (not closed yet, already late);
* ``ever_breached``: distinct (work order, clock) pairs with any breached cycle, closed or open,
  whatever became of the last one (a clock breached in its first cycle and met in its second
  counts here, and as one met and one missed cycle above);
* ``compliance_percent``: ``met / (met + missed + running_breached) * 100``; cancelled cycles
  count neither way, and without any cycle to judge it is None.

:func:`at_risk` picks the open cycles an operator should look at now (breached, predicted to
finish late, warned, or due soon), most urgent first.

Pure: instants come in as aware datetimes, nothing here reads a clock or a store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class ReportGroup(StrEnum):
    """What the rows of a compliance report are grouped by (each group then per clock)."""

    NONE = "none"
    CONTRACTOR = "contractor"
    EQUIPMENT_CLASS = "equipment_class"
    TENANT = "tenant"
    CLOCK = "clock"


class CycleOutcome(StrEnum):
    """How a closed cycle of a clock ended."""

    MET = "met"
    MISSED = "missed"
    CANCELLED = "cancelled"


class OpenCycleState(StrEnum):
    """An open cycle counts down (running) or waits with its time stopped (paused)."""

    RUNNING = "running"
    PAUSED = "paused"


class RiskReason(StrEnum):
    """Why an open cycle is at risk, the most serious first."""

    BREACHED = "breached"
    PREDICTED_LATE = "predicted_late"
    WARNED = "warned"
    DUE_SOON = "due_soon"


_RISK_ORDER = {reason: index for index, reason in enumerate(RiskReason)}


@dataclass(frozen=True, kw_only=True)
class CycleProfile:
    """What a work order's cycles are judged and grouped by."""

    contractor_id: str | None = None
    equipment_class: str | None = None
    priority: str | None = None
    category: str | None = None
    site_timezone: str | None = None


@dataclass(frozen=True, kw_only=True)
class ClosedCycle:
    """The final record of one closed cycle of a work order's clock."""

    work_order_id: str
    tenant: str
    clock: str
    cycle: int
    outcome: CycleOutcome
    breached: bool
    started_at: datetime
    closed_at: datetime
    deadline: datetime | None = None
    original_deadline: datetime | None = None
    breach_margin_seconds: float | None = None
    """``closed_at - deadline``; above 0 when the cycle closed late."""
    paused_seconds: float = 0.0
    business_seconds: float = 0.0
    wall_seconds: float = 0.0
    policy_name: str = ""
    policy_version: int = 0
    calendar: str = ""
    calendar_version: int = 0
    timezone: str = ""
    timezone_source: str = ""
    profile: CycleProfile = field(default_factory=CycleProfile)
    revision: int = 1

    @property
    def ever_breached(self) -> bool:
        """Missed, or past its deadline at some moment before it closed."""
        return self.breached or self.outcome is CycleOutcome.MISSED


@dataclass(frozen=True, kw_only=True)
class OpenCycle:
    """A cycle of a work order's clock that is still running or paused."""

    work_order_id: str
    tenant: str
    clock: str
    cycle: int
    state: OpenCycleState
    started_at: datetime
    deadline: datetime | None = None
    warn_at: datetime | None = None
    breached_at: datetime | None = None
    predicted_at: datetime | None = None
    """When the cycle is expected to close, if a prediction was made."""
    basis: str | None = None
    """What the prediction rests on."""
    policy_version: int = 0
    profile: CycleProfile = field(default_factory=CycleProfile)

    @property
    def due(self) -> datetime | None:
        """The deadline; for a breached cycle without one, the moment it breached."""
        return self.deadline if self.deadline is not None else self.breached_at

    def is_breached(self, now: datetime) -> bool:
        """Recorded as breached by ``now``, or running past its deadline."""
        if self.breached_at is not None and self.breached_at <= now:
            return True
        return (
            self.state is OpenCycleState.RUNNING
            and self.deadline is not None
            and self.deadline <= now
        )

    def predicted_lateness(self) -> timedelta | None:
        """How much later than its deadline the cycle is predicted to close (None if not)."""
        if self.predicted_at is None or self.deadline is None or self.predicted_at <= self.deadline:
            return None
        return self.predicted_at - self.deadline

    def risk(self, now: datetime, within: timedelta) -> RiskReason | None:
        """Why the cycle needs attention at ``now``, or None.

        A paused cycle is not counting down (its deadline moves on with the pause), so only a
        breach puts it at risk.
        """
        if self.is_breached(now):
            return RiskReason.BREACHED
        if self.state is OpenCycleState.PAUSED:
            return None
        if self.predicted_lateness() is not None:
            return RiskReason.PREDICTED_LATE
        if self.warn_at is not None and self.warn_at <= now:
            return RiskReason.WARNED
        if self.deadline is not None and self.deadline <= now + within:
            return RiskReason.DUE_SOON
        return None


@dataclass(frozen=True, kw_only=True)
class ReportRow:
    """The figures of one group and clock over a period."""

    group: str
    """The group's value ("" when not grouped, or for cycles without one, e.g. no contractor)."""
    clock: str
    met: int = 0
    missed: int = 0
    cancelled: int = 0
    running_breached: int = 0
    ever_breached: int = 0

    @property
    def judged(self) -> int:
        """Cycles compliance is judged on: met, missed and running breached."""
        return self.met + self.missed + self.running_breached

    @property
    def compliance_percent(self) -> float | None:
        """Met cycles as a share of the judged ones, None when none was judged."""
        judged = self.judged
        return None if judged == 0 else self.met * 100.0 / judged


@dataclass(frozen=True, kw_only=True)
class AtRiskRow:
    """An open cycle at risk and how much time it has left."""

    cycle: OpenCycle
    reason: RiskReason
    time_left: timedelta | None
    """``deadline - now`` (negative when overdue); None without a deadline."""
    predicted_lateness: timedelta | None
    """``predicted - deadline`` when the cycle is predicted to close late."""


def _group_of(by: ReportGroup, tenant: str, clock: str, profile: CycleProfile) -> str:
    match by:
        case ReportGroup.NONE:
            return ""
        case ReportGroup.CONTRACTOR:
            return profile.contractor_id or ""
        case ReportGroup.EQUIPMENT_CLASS:
            return profile.equipment_class or ""
        case ReportGroup.TENANT:
            return tenant
        case ReportGroup.CLOCK:
            return clock


@dataclass
class _Counts:
    met: int = 0
    missed: int = 0
    cancelled: int = 0
    running_breached: int = 0
    breached_pairs: set[tuple[str, str]] = field(default_factory=set)


class ReportTally:
    """Counts cycles one at a time (the closed cycles of a long period need not be held)."""

    def __init__(self, by: ReportGroup, now: datetime) -> None:
        self._by = by
        self._now = now
        self._counts: dict[tuple[str, str], _Counts] = {}

    def _counts_of(self, tenant: str, clock: str, profile: CycleProfile) -> _Counts:
        key = (_group_of(self._by, tenant, clock, profile), clock)
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = _Counts()
        return counts

    def add_closed(self, cycle: ClosedCycle) -> None:
        counts = self._counts_of(cycle.tenant, cycle.clock, cycle.profile)
        match cycle.outcome:
            case CycleOutcome.MET:
                counts.met += 1
            case CycleOutcome.MISSED:
                counts.missed += 1
            case CycleOutcome.CANCELLED:
                counts.cancelled += 1
        if cycle.ever_breached:
            counts.breached_pairs.add((cycle.tenant, cycle.work_order_id))

    def add_open(self, cycle: OpenCycle) -> None:
        """An open cycle counts only when it is breached now."""
        if not cycle.is_breached(self._now):
            return
        counts = self._counts_of(cycle.tenant, cycle.clock, cycle.profile)
        counts.running_breached += 1
        counts.breached_pairs.add((cycle.tenant, cycle.work_order_id))

    def rows(self) -> list[ReportRow]:
        """One row per group and clock that had any cycle, ordered by group then clock."""
        return [
            ReportRow(
                group=group,
                clock=clock,
                met=counts.met,
                missed=counts.missed,
                cancelled=counts.cancelled,
                running_breached=counts.running_breached,
                ever_breached=len(counts.breached_pairs),
            )
            for (group, clock), counts in sorted(self._counts.items())
        ]


def summarize(
    closed: Iterable[ClosedCycle],
    open_cycles: Iterable[OpenCycle],
    *,
    by: ReportGroup,
    now: datetime,
) -> list[ReportRow]:
    """The figures per group and clock of the ``closed`` cycles of a period and the
    ``open_cycles`` breached at ``now`` (open cycles not breached are left out)."""
    tally = ReportTally(by, now)
    for cycle in closed:
        tally.add_closed(cycle)
    for open_cycle in open_cycles:
        tally.add_open(open_cycle)
    return tally.rows()


def at_risk_row(cycle: OpenCycle, now: datetime, within: timedelta) -> AtRiskRow | None:
    """The cycle as an at-risk row, or None when it is not at risk."""
    reason = cycle.risk(now, within)
    if reason is None:
        return None
    due = cycle.due
    return AtRiskRow(
        cycle=cycle,
        reason=reason,
        time_left=None if due is None else due - now,
        predicted_lateness=cycle.predicted_lateness(),
    )


def risk_order(row: AtRiskRow) -> tuple[bool, timedelta, int, str, str, int]:
    """Least time left first (without a deadline last), then the most serious reason."""
    cycle = row.cycle
    return (
        row.time_left is None,
        row.time_left if row.time_left is not None else timedelta(0),
        _RISK_ORDER[row.reason],
        cycle.work_order_id,
        cycle.clock,
        cycle.cycle,
    )


def at_risk(
    cycles: Iterable[OpenCycle], *, now: datetime, within: timedelta, limit: int | None = None
) -> list[AtRiskRow]:
    """The open cycles at risk at ``now`` (breached, predicted late, warned, or due within
    ``within``), least time left first; at most ``limit`` of them."""
    rows = [row for cycle in cycles if (row := at_risk_row(cycle, now, within)) is not None]
    rows.sort(key=risk_order)
    return rows if limit is None else rows[:limit]


__all__ = [
    "AtRiskRow",
    "ClosedCycle",
    "CycleOutcome",
    "CycleProfile",
    "OpenCycle",
    "OpenCycleState",
    "ReportGroup",
    "ReportRow",
    "ReportTally",
    "RiskReason",
    "at_risk",
    "at_risk_row",
    "risk_order",
    "summarize",
]
