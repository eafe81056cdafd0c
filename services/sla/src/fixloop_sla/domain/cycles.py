"""The clocks of one work order, as a pure fold over its lifecycle facts.

Each milestone clock (:class:`~fixloop_shared.vocabulary.Milestone`) runs in cycles::

    (start) -> RUNNING <-> PAUSED -> MET | MISSED | CANCELLED

After every fact, in the order of ``(occurred_at, order version, event id)``, each clock's
conditions are evaluated on the projected order (:class:`~fixloop_sla.domain.facts.OrderView`):
start, stop, reset and cancel are edge triggers, pause is a level. Several matches on one fact apply
in the order stop > reset(+start) > cancel > pause > resume > start.

- A cycle counts business time (its goal's calendar in the site's time zone) outside its pauses;
  its deadline is the instant its target is used up. While paused it has none; each resume gives
  it a new deadline version when the deadline moved.
- Breach is inclusive: a cycle still running (or pausing, or stopping) at the very instant of its
  deadline missed it.
- A stop before its start (the stop's fact sorts first) is remembered: the cycle that starts later
  stops at once.
- A reopened order starts a new cycle of the clocks that start on a reopen, resumes the last one
  (the time between its stop and the reopen counts as paused), or leaves them, by the policy.

The fold is deterministic, so replaying an order's facts after a late event gives the clocks as if
the events had come in order; :mod:`fixloop_sla.domain.settle` compares that with what was
announced.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fixloop_shared.vocabulary import ActorKind, Milestone, WorkOrderState
from fixloop_sla.domain.calendar import (
    BusinessCalendar,
    business_deadline,
    business_elapsed,
)
from fixloop_sla.domain.facts import (
    EXCEPTIONS,
    WORK_UNDER_WAY,
    FactKind,
    OrderFact,
    OrderView,
)
from fixloop_sla.domain.policy import (
    ClockDefinition,
    Goal,
    OrderProfile,
    PauseReason,
    PolicyBook,
    ReopenRule,
    SlaPolicy,
)

S = WorkOrderState
M = Milestone


class CycleState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    MISSED = "missed"
    CANCELLED = "cancelled"


CLOSED_STATES = frozenset({CycleState.MET, CycleState.MISSED, CycleState.CANCELLED})


class Trigger(StrEnum):
    START = "start"
    STOP = "stop"
    RESET = "reset"
    CANCEL = "cancel"


@dataclass(frozen=True)
class DeadlineSpan:
    """A stretch of running time with one deadline: from a start or resume to a pause or stop."""

    version: int
    deadline: datetime | None
    """None: the target is not reached within the calendar's horizon (no working time)."""
    start: datetime
    end: datetime | None = None


@dataclass(frozen=True)
class Prediction:
    """When the milestone is expected, by the latest fact that said so."""

    expected_at: datetime
    basis: str
    event_id: str


@dataclass(frozen=True)
class CycleFacts:
    """What an announcement says about its cycle: which one, since when, under which policy."""

    clock: Milestone
    number: int
    started_at: datetime
    policy_name: str
    policy_version: int
    state: CycleState
    breached_at: datetime | None = None

    @property
    def key(self) -> str:
        return cycle_key(self.clock, self.number)


@dataclass(frozen=True)
class ClockCycle:
    """One cycle of one clock, as the fold leaves it at ``now``."""

    clock: Milestone
    number: int
    started_at: datetime
    policy_name: str
    policy_version: int
    target: timedelta
    calendar: str
    calendar_version: str
    timezone: str
    timezone_source: str
    warning_lead: timedelta | None
    escalations: tuple[tuple[int, timedelta, str], ...]
    state: CycleState
    spans: tuple[DeadlineSpan, ...]
    pauses: tuple[tuple[datetime, datetime | None], ...]
    breached_at: datetime | None
    """The deadline that was missed (the breach moment), if it was."""
    closed_at: datetime | None
    stop_reason: str | None
    prediction: Prediction | None
    business_elapsed: timedelta
    wall_elapsed: timedelta
    paused_total: timedelta

    @property
    def key(self) -> str:
        return cycle_key(self.clock, self.number)

    @property
    def facts(self) -> CycleFacts:
        return CycleFacts(
            clock=self.clock,
            number=self.number,
            started_at=self.started_at,
            policy_name=self.policy_name,
            policy_version=self.policy_version,
            state=self.state,
            breached_at=self.breached_at,
        )

    @property
    def is_open(self) -> bool:
        return self.state not in CLOSED_STATES

    @property
    def current_span(self) -> DeadlineSpan | None:
        return self.spans[-1] if self.spans else None

    @property
    def deadline(self) -> datetime | None:
        """The deadline in force: that of the last span (of the running one, when running)."""
        span = self.current_span
        return None if span is None else span.deadline

    @property
    def deadline_version(self) -> int:
        span = self.current_span
        return 1 if span is None else span.version

    @property
    def original_deadline(self) -> datetime | None:
        return self.spans[0].deadline if self.spans else None

    def warn_at(self, span: DeadlineSpan) -> datetime | None:
        """When the warning of ``span``'s deadline is due (never before the span began)."""
        if self.warning_lead is None or span.deadline is None:
            return None
        moment = max(span.deadline - self.warning_lead, span.start)
        return moment if moment < span.deadline else None


def cycle_key(clock: Milestone, number: int) -> str:
    return f"{clock.value}/{number}"


_CLOCK_NAMESPACE = uuid.UUID("5b0f6c2e-3f57-4a0e-9d1c-7a1f3c5e9b21")


def clock_id_for(work_order_id: str, clock: Milestone, cycle: int = 1) -> str:
    """A cycle's id, derived from its key (the first cycle keeps the id clocks always had)."""
    name = f"{clock.value}/{work_order_id}" + ("" if cycle == 1 else f"/{cycle}")
    return str(uuid.uuid5(_CLOCK_NAMESPACE, name))


# --------------------------------------------------------------------------- the conditions


def triggers(  # noqa: PLR0912, PLR0915 - every clock's conditions in one table
    clock: Milestone, before: OrderView, after: OrderView, fact: OrderFact
) -> set[Trigger]:
    """Which edge conditions of ``clock`` this fact meets (pauses are levels: :func:`paused`)."""
    kind, actor = fact.kind, fact.actor
    cancelled = after.state is S.CANCELLED
    found: set[Trigger] = set()
    if clock is M.DISPATCH_CONFIRMATION:
        if kind is FactKind.RECEIVED:
            found.add(Trigger.START)
        if kind is FactKind.ASSIGNED:
            found.add(Trigger.STOP)
    elif clock is M.ARRIVAL:
        if kind in (FactKind.ASSIGNED, FactKind.REOPENED):
            found.add(Trigger.START)
        if kind is FactKind.ON_SITE:
            found.add(Trigger.STOP)
    elif clock is M.REPAIR:
        if kind in (FactKind.RECEIVED, FactKind.REOPENED):
            found.add(Trigger.START)
        if kind is FactKind.WORK_COMPLETED:
            found.add(Trigger.STOP)
    elif clock is M.PARTS_FULFILMENT:
        if after.state is S.AWAITING_PARTS and before.state is not S.AWAITING_PARTS:
            found.add(Trigger.START)
        if before.state is S.AWAITING_PARTS and after.state not in (S.AWAITING_PARTS, S.CANCELLED):
            found.add(Trigger.STOP)
    elif clock is M.PROGRESS_UPDATE:
        if after.state in WORK_UNDER_WAY:
            found.add(Trigger.START)
            update = kind in (FactKind.PROGRESS, FactKind.DELAYED) or (
                before.state in WORK_UNDER_WAY and after.state != before.state
            )
            if update and actor is ActorKind.CONTRACTOR:
                found.add(Trigger.RESET)
        elif kind is FactKind.WORK_COMPLETED:
            found.add(Trigger.STOP)
        else:
            found.add(Trigger.CANCEL)
    elif clock is M.EXCEPTION_RESPONSE:
        if kind in EXCEPTIONS and after.exception_unanswered:
            found.add(Trigger.START)
        elif before.exception_unanswered and not after.exception_unanswered and not cancelled:
            found.add(Trigger.STOP)
    elif clock is M.EXCEPTION_ACTION:
        if kind in EXCEPTIONS:
            found.add(Trigger.START)
        elif before.exception_unacted and not after.exception_unacted and not cancelled:
            found.add(Trigger.STOP)
    elif clock is M.REQUESTER_QUESTION:
        if kind is FactKind.COMMENT and actor is ActorKind.REQUESTER:
            found.add(Trigger.START)
        if kind is FactKind.COMMENT and actor in (ActorKind.OPERATOR, ActorKind.CONTRACTOR):
            found.add(Trigger.STOP)
        if after.state in (S.CLOSED, S.ARCHIVED):
            found.add(Trigger.CANCEL)
    if cancelled or after.state is S.ARCHIVED:
        found.add(Trigger.CANCEL)
    return found


def paused(definition: ClockDefinition, view: OrderView) -> bool:
    """The pause level: whether a cycle of this clock stands still on this order now."""
    reasons = definition.pause_when
    return (PauseReason.CUSTOMER_WAIT in reasons and view.customer_wait) or (
        PauseReason.AWAITING_PARTS in reasons and view.state is S.AWAITING_PARTS
    )


_STARTS_ON_REOPEN = frozenset({M.ARRIVAL, M.REPAIR})
_ONCE_PER_ORDER = frozenset({M.DISPATCH_CONFIRMATION, M.ARRIVAL, M.REPAIR})
"""Milestones reached once (until a reopen): a stop seen before their start is remembered."""


# --------------------------------------------------------------------------- the fold


@dataclass
class _Cycle:
    clock: Milestone
    number: int
    definition: ClockDefinition
    policy: SlaPolicy
    goal: Goal
    target: timedelta
    calendar: BusinessCalendar
    zone: ZoneInfo
    timezone_source: str
    started_at: datetime
    state: CycleState = CycleState.RUNNING
    pauses: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    spans: list[DeadlineSpan] = field(default_factory=list)
    breached_at: datetime | None = None
    closed_at: datetime | None = None
    stop_reason: str | None = None
    prediction: Prediction | None = None

    def open_span(self, at: datetime) -> None:
        deadline = business_deadline(
            self.calendar, self.zone, self.started_at, self.target, self.pauses
        )
        previous = self.spans[-1] if self.spans else None
        version = 1 if previous is None else previous.version + (previous.deadline != deadline)
        self.spans.append(DeadlineSpan(version=version, deadline=deadline, start=at))
        self.state = CycleState.RUNNING

    def end_span(self, at: datetime) -> None:
        span = self.spans[-1]
        self.spans[-1] = DeadlineSpan(span.version, span.deadline, span.start, at)
        if self.breached_at is None and span.deadline is not None and span.deadline <= at:
            self.breached_at = span.deadline

    def pause(self, at: datetime) -> None:
        if self.state is CycleState.RUNNING:
            self.end_span(at)
            self.pauses.append((at, None))
            self.state = CycleState.PAUSED

    def resume(self, at: datetime) -> None:
        if self.state is CycleState.PAUSED:
            began, _ = self.pauses.pop()
            if began < at:
                self.pauses.append((began, at))
            self.open_span(at)

    def close(self, at: datetime, state: CycleState, reason: str | None = None) -> None:
        if self.state is CycleState.RUNNING:
            self.end_span(at)
        elif self.state is CycleState.PAUSED:
            began, _ = self.pauses.pop()
            if began < at:
                self.pauses.append((began, at))
        if state is CycleState.MET and self.breached_at is not None:
            state = CycleState.MISSED
        self.state = state
        self.closed_at = at
        self.stop_reason = reason

    def reopen(self, at: datetime) -> None:
        """Resume a closed cycle: the time since it stopped counts as paused."""
        assert self.closed_at is not None  # noqa: S101 - only closed cycles are reopened
        if self.closed_at < at:
            self.pauses.append((self.closed_at, at))
        self.closed_at = None
        self.stop_reason = None
        self.open_span(at)

    def result(self, now: datetime) -> ClockCycle:
        if self.state is CycleState.RUNNING:
            span = self.spans[-1]
            if self.breached_at is None and span.deadline is not None and span.deadline <= now:
                self.breached_at = span.deadline
        until = self.closed_at if self.closed_at is not None else now
        pauses = tuple(self.pauses)
        paused_total = sum(
            ((min(end or until, until) - begin) for begin, end in pauses if begin < until),
            timedelta(0),
        )
        return ClockCycle(
            clock=self.clock,
            number=self.number,
            started_at=self.started_at,
            policy_name=self.policy.name,
            policy_version=self.policy.version,
            target=self.target,
            calendar=self.calendar.name,
            calendar_version=self.calendar.version,
            timezone=self.zone.key,
            timezone_source=self.timezone_source,
            warning_lead=self.definition.warning_lead(self.goal),
            escalations=tuple((t.level, t.offset, t.audience) for t in self.definition.escalations),
            state=self.state,
            spans=tuple(self.spans),
            pauses=pauses,
            breached_at=self.breached_at,
            closed_at=self.closed_at,
            stop_reason=self.stop_reason,
            prediction=self.prediction,
            business_elapsed=business_elapsed(
                self.calendar, self.zone, self.started_at, until, pauses
            ),
            wall_elapsed=until - self.started_at,
            paused_total=paused_total,
        )


def resolve_zone(profile: OrderProfile | None, policy: SlaPolicy) -> tuple[ZoneInfo, str]:
    """The site's time zone, else the policy's, else UTC; and which of them it is."""
    for name, source in (
        (profile.site_timezone if profile else None, "site"),
        (policy.timezone, "policy"),
    ):
        if name:
            try:
                return ZoneInfo(name), source
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC"), "utc"


_PREDICTS: Mapping[FactKind, tuple[tuple[Milestone, str], ...]] = {
    FactKind.EN_ROUTE: ((M.ARRIVAL, "eta"),),
    FactKind.ON_SITE: ((M.REPAIR, "eta"),),
    FactKind.PROGRESS: ((M.REPAIR, "eta"),),
    FactKind.DELAYED: ((M.REPAIR, "delay"), (M.ARRIVAL, "delay")),
    FactKind.AWAITING_PARTS: ((M.PARTS_FULFILMENT, "parts_eta"), (M.REPAIR, "parts_eta")),
}
"""Which clocks a fact's ETA predicts, and what the prediction rests on."""


@dataclass(frozen=True)
class Fold:
    cycles: tuple[ClockCycle, ...]
    pins: Mapping[str, int]
    view: OrderView


def fold(  # noqa: PLR0912, PLR0915 - the precedence of the conditions reads best in one place
    facts: Sequence[OrderFact],
    profile: OrderProfile | None,
    book: PolicyBook,
    pins: Mapping[str, int],
    now: datetime,
) -> Fold:
    """Every clock cycle of the order at ``now``, from its facts (sorted by their sort key)."""
    view = OrderView()
    open_cycles: dict[Milestone, _Cycle] = {}
    last_cycle: dict[Milestone, _Cycle] = {}
    counts: dict[Milestone, int] = {}
    early_stops: set[Milestone] = set()
    everything: list[_Cycle] = []
    new_pins = dict(pins)
    active_clocks = [d.clock for d in book.active.clocks]
    clocks = [
        c for c in Milestone if c in active_clocks or any(k.startswith(f"{c.value}/") for k in pins)
    ]

    def start(clock: Milestone, at: datetime) -> _Cycle | None:
        number = counts.get(clock, 0) + 1
        key = cycle_key(clock, number)
        policy = book.pinned(new_pins.get(key))
        definition = policy.definition(clock)
        if definition is None or profile is None:
            return None
        goal = definition.goal_for(profile)
        if goal.target is None:
            return None
        zone, source = resolve_zone(profile, policy)
        counts[clock] = number
        new_pins[key] = policy.version
        cycle = _Cycle(
            clock=clock,
            number=number,
            definition=definition,
            policy=policy,
            goal=goal,
            target=goal.target,
            calendar=policy.calendar(goal.calendar),
            zone=zone,
            timezone_source=source,
            started_at=at,
        )
        if paused(definition, view):
            cycle.pauses.append((at, None))
            cycle.state = CycleState.PAUSED
        else:
            cycle.open_span(at)
        everything.append(cycle)
        last_cycle[clock] = cycle
        return cycle

    for fact in facts:
        before, view = view, view.after(fact)
        at = fact.occurred_at
        for clock in clocks:
            found = triggers(clock, before, view, fact)
            current = open_cycles.get(clock)
            if current is not None and Trigger.STOP in found:
                current.close(at, CycleState.MET)
                del open_cycles[clock]
                continue
            if Trigger.RESET in found and current is not None:
                current.close(at, CycleState.MET)
                del open_cycles[clock]
                if (started := start(clock, at)) is not None:
                    open_cycles[clock] = started
                continue
            if current is not None and Trigger.CANCEL in found:
                current.close(at, CycleState.CANCELLED, fact.reason or "work order cancelled")
                del open_cycles[clock]
                continue
            if current is not None:
                if paused(current.definition, view):
                    current.pause(at)
                else:
                    current.resume(at)
                continue
            if Trigger.STOP in found and clock not in last_cycle and clock in _ONCE_PER_ORDER:
                early_stops.add(clock)
                continue
            if Trigger.START not in found or Trigger.CANCEL in found:
                continue
            previous = last_cycle.get(clock)
            if fact.kind is FactKind.REOPENED and clock in _STARTS_ON_REOPEN:
                rule = previous.definition.on_reopen if previous is not None else None
                if rule is ReopenRule.IGNORE:
                    continue
                if rule is ReopenRule.RESUME and previous is not None:
                    if previous.state is not CycleState.CANCELLED:
                        previous.reopen(at)
                        open_cycles[clock] = previous
                    continue
            elif previous is not None and clock in (M.DISPATCH_CONFIRMATION, M.REPAIR):
                continue  # started once per order (again only on a reopen)
            cycle = start(clock, at)
            if cycle is None:
                continue
            if clock in early_stops:
                early_stops.discard(clock)
                cycle.close(at, CycleState.MET)
                continue
            open_cycles[clock] = cycle
        for clock, basis in _PREDICTS.get(fact.kind, ()):
            if fact.eta is not None and (cycle := open_cycles.get(clock)) is not None:
                cycle.prediction = Prediction(fact.eta, basis, fact.event_id)

    return Fold(cycles=tuple(cycle.result(now) for cycle in everything), pins=new_pins, view=view)
