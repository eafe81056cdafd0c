"""Settling an order's clocks at a moment: what to announce, what to correct, when to look again.

:class:`OrderClocks` is everything the sla service keeps about one work order: its facts, the
policy version each cycle pinned, what was announced (``emitted``, keyed by clock, cycle,
threshold and deadline) and the deadline and outcome last known of each cycle. :func:`settle`
folds the facts at ``now`` (:mod:`fixloop_sla.domain.cycles`) and compares:

- a threshold whose moment has come and that was not announced yet is announced once: the
  warning (once per deadline: a moved deadline may warn again), the breach (once per cycle), each
  escalation level (once per cycle); a firing more than ``late_after`` after its moment is
  flagged ``late``;
- a warning whose deadline has passed already when it is first considered is suppressed (the
  breach says more), as is one of a cycle that ended before it went out; escalations go out only
  while their cycle is open;
- a met cycle says so once, a cancelled one says it stopped once;
- a breach announced earlier that the facts no longer show is retracted; a cycle whose deadline
  or outcome changed because a late or out-of-order fact was replayed is announced recomputed;
- a fact's ETA later than an open cycle's deadline announces the cycle at risk at once, with the
  predicted lateness (once per ETA and deadline).

``next_due`` is the next moment anything can become due on its own (None: nothing pending).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from fixloop_sla.domain.cycles import ClockCycle, CycleFacts, CycleState, Fold, fold
from fixloop_sla.domain.facts import OrderFact
from fixloop_sla.domain.instants import to_instant
from fixloop_sla.domain.policy import OrderProfile, PolicyBook

DEFAULT_LATE_AFTER = timedelta(seconds=5)
MAX_FACTS = 2_000
"""Facts kept per order; an order with more (a runaway producer) keeps its newest ones."""


class SignalKind(StrEnum):
    WARNING = "warning"
    BREACH = "breach"
    ESCALATION = "escalation"
    MET = "met"
    STOPPED = "stopped"
    RECOMPUTED = "recomputed"
    BREACH_RETRACTED = "breach_retracted"
    AT_RISK = "at_risk"


@dataclass(frozen=True)
class Announced:
    """Something said about a cycle: when it was due, and whether it was taken back since."""

    moment: datetime
    retracted: bool = False


@dataclass(frozen=True)
class KnownCycle:
    """A cycle's deadline and outcome as last settled (to tell a correction from progress)."""

    deadline: datetime | None
    state: CycleState


@dataclass(frozen=True)
class ClockSignal:
    kind: SignalKind
    cycle: CycleFacts
    fired_at: datetime
    moment: datetime
    """When it was due (the threshold's moment, the stop, the correction)."""
    deadline: datetime
    deadline_version: int
    warn_at: datetime
    late: bool = False
    level: int = 0
    audience: str = ""
    reason: str = ""
    previous_deadline: datetime | None = None
    previous_state: CycleState | None = None
    predicted_at: datetime | None = None
    basis: str = ""


Announce = Callable[[str, "ClockSignal"], None]

_KIND_ORDER = {SignalKind.WARNING: 0, SignalKind.BREACH: 1, SignalKind.ESCALATION: 2}


@dataclass(frozen=True)
class Planned:
    """A threshold that comes due by itself, with no event: its moment and what it will say.

    A settlement leaves the plan of its open cycles' next thresholds; until the order's next
    event, firing the plan (:func:`fire_plan`) says exactly what settling again would, without
    folding the order's facts.
    """

    key: str
    kind: SignalKind
    moment: datetime
    cycle: CycleFacts
    deadline: datetime
    deadline_version: int
    warn_at: datetime
    level: int = 0
    audience: str = ""

    @property
    def order(self) -> tuple[datetime, int]:
        return (self.moment, _KIND_ORDER[self.kind])


@dataclass(frozen=True)
class OrderClocks:
    work_order_id: str
    tenant: str
    correlation_id: str
    profile: OrderProfile | None = None
    facts: tuple[OrderFact, ...] = ()
    pins: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    emitted: Mapping[str, Announced] = field(default_factory=lambda: MappingProxyType({}))
    known: Mapping[str, KnownCycle] = field(default_factory=lambda: MappingProxyType({}))
    ignored_facts: int = 0
    contractor_id: str | None = None
    open: tuple[tuple[str, str], ...] = ()
    """(clock, condition) of each open cycle as last settled: running, paused or breached."""
    plan: Sequence[Planned] | None = None
    """The thresholds due by themselves until the next event, in the order of their moments
    (None: not known, settle)."""
    partition: int | None = None
    version: int = 0
    """The stored version this record was read at (0: not stored yet)."""

    @property
    def newest_fact_at(self) -> datetime | None:
        return self.facts[-1].occurred_at if self.facts else None

    def knows(self, event_id: str) -> bool:
        return any(fact.event_id == event_id for fact in self.facts)


@dataclass(frozen=True)
class Recorded:
    """What adding a fact did: the record after it, and whether the clocks must be replayed."""

    record: OrderClocks
    added: bool
    replayed: bool
    """The fact sorts before facts seen already, or is dated before a moment already announced
    (a warning, a breach, an escalation): a late or out-of-order event."""
    too_late: bool = False


def record_fact(
    record: OrderClocks, fact: OrderFact, *, now: datetime, allowed_lateness: timedelta
) -> Recorded:
    """Add ``fact`` to the order's facts (once; a fact from the future counts at ``now``)."""
    if record.knows(fact.event_id):
        return Recorded(record, added=False, replayed=False)
    at = to_instant(now)
    if fact.occurred_at > at:
        fact = replace(fact, occurred_at=at)
    newest = record.newest_fact_at
    if newest is not None and fact.occurred_at < newest - allowed_lateness:
        ignored = replace(record, ignored_facts=record.ignored_facts + 1)
        return Recorded(ignored, added=False, replayed=False, too_late=True)
    announced = max(  # the latest clock moment said (an at-risk signal's is only when it was)
        (
            said.moment
            for key, said in record.emitted.items()
            if not said.retracted and "/at_risk/" not in key
        ),
        default=None,
    )
    replayed = bool(record.facts) and (
        fact.sort_key < record.facts[-1].sort_key
        or (announced is not None and fact.occurred_at < announced)
    )
    facts = sorted((*record.facts, fact), key=lambda f: f.sort_key)[-MAX_FACTS:]
    return Recorded(replace(record, facts=tuple(facts)), added=True, replayed=replayed)


@dataclass(frozen=True)
class Settlement:
    record: OrderClocks
    signals: tuple[ClockSignal, ...]
    cycles: tuple[ClockCycle, ...]
    closed: tuple[ClockCycle, ...]
    """Cycles that closed, or whose closed outcome changed, in this settlement."""
    next_due: datetime | None

    @property
    def changed(self) -> bool:
        return bool(self.signals or self.closed)


def settle(
    record: OrderClocks,
    book: PolicyBook,
    now: datetime,
    *,
    replayed: bool = False,
    late_after: timedelta = DEFAULT_LATE_AFTER,
) -> Settlement:
    """Fold the order's facts at ``now`` and say what is due, once (see the module)."""
    at = to_instant(now)
    result: Fold = fold(record.facts, record.profile, book, record.pins, at)
    emitted = dict(record.emitted)
    signals: list[ClockSignal] = []

    def announce(key: str, signal: ClockSignal) -> None:
        emitted[key] = Announced(signal.moment)
        signals.append(signal)

    def late(moment: datetime) -> bool:
        return at - moment > late_after

    next_moments: list[datetime] = []
    by_key = {cycle.key: cycle for cycle in result.cycles}
    for cycle in result.cycles:
        _thresholds(cycle, at, emitted, announce=announce, late=late, next_moments=next_moments)
        _outcome(cycle, at, emitted, announce)
        _prediction(cycle, at, emitted, announce)
    _retractions(by_key, record.emitted, at, emitted, signals)

    known = dict(record.known)
    closed: list[ClockCycle] = []
    for cycle in result.cycles:
        now_known = KnownCycle(cycle.deadline, cycle.state)
        before = known.get(cycle.key)
        if replayed and before is not None and before != now_known:
            signals.append(_recomputed(cycle, at, before))
        if not cycle.is_open and before != now_known:
            closed.append(cycle)
        known[cycle.key] = now_known

    plan = tuple(
        sorted(
            (p for cycle in result.cycles for p in _planned(cycle, at, emitted)),
            key=lambda p: p.order,
        )
    )
    after = replace(
        record,
        open=open_conditions(result.cycles),
        plan=plan,
        pins=MappingProxyType(dict(result.pins)),
        emitted=MappingProxyType(emitted),
        known=MappingProxyType(known),
    )
    next_due = min(next_moments) if next_moments else None
    return Settlement(after, tuple(signals), result.cycles, tuple(closed), next_due)


def _planned(cycle: ClockCycle, at: datetime, emitted: Mapping[str, Announced]) -> list[Planned]:
    """The thresholds of ``cycle`` after ``at`` that come due unless an event comes first."""
    span = cycle.current_span
    if cycle.state is not CycleState.RUNNING or span is None or span.deadline is None:
        return []
    deadline = span.deadline
    warn_at = cycle.warn_at(span)
    facts = cycle.facts
    common = {"deadline_version": span.version, "warn_at": warn_at or deadline}
    planned: list[Planned] = []

    def pending(key: str) -> bool:
        said = emitted.get(key)
        return said is None or said.retracted

    warning_key = f"{cycle.key}/warning/{_ms(deadline)}"
    if warn_at is not None and warn_at > at and warning_key not in emitted:
        planned.append(
            Planned(
                warning_key,
                SignalKind.WARNING,
                warn_at,
                replace(facts, breached_at=None),
                deadline=deadline,
                **common,  # type: ignore[arg-type]
            )
        )
    breach = cycle.breached_at or deadline
    breached = replace(facts, breached_at=breach)
    if cycle.breached_at is None and pending(f"{cycle.key}/breach"):
        planned.append(
            Planned(
                f"{cycle.key}/breach",
                SignalKind.BREACH,
                deadline,
                breached,
                deadline=deadline,
                **common,  # type: ignore[arg-type]
            )
        )
    for level, offset, audience in cycle.escalations:
        key = f"{cycle.key}/escalation-{level}"
        if key not in emitted and breach + offset > at:
            planned.append(
                Planned(
                    key,
                    SignalKind.ESCALATION,
                    breach + offset,
                    breached,
                    deadline=breach,
                    level=level,
                    audience=audience,
                    **common,  # type: ignore[arg-type]
                )
            )
    return planned


def fire_plan(
    record: OrderClocks, now: datetime, *, late_after: timedelta = DEFAULT_LATE_AFTER
) -> Settlement:
    """Fire what the record's plan has due at ``now`` (no event since it was settled).

    Says what :func:`settle` would say at ``now``, from the plan alone: the facts are not read
    (the record may be loaded without them). ``record.plan`` must be known.
    """
    if record.plan is None:
        msg = f"order {record.work_order_id}: no plan to fire; settle it"
        raise ValueError(msg)
    at = to_instant(now)
    plan = record.plan
    emitted = dict(record.emitted)
    open_now = list(record.open)
    signals: list[ClockSignal] = []
    fired = 0  # the plan is in the order of its moments: only its head is due
    while fired < len(plan) and plan[fired].moment <= at:
        planned = plan[fired]
        fired += 1
        said = emitted.get(planned.key)
        if said is not None and not said.retracted:
            continue
        if planned.kind is SignalKind.WARNING and at >= planned.deadline:
            emitted[planned.key] = Announced(planned.moment, retracted=True)  # suppressed
            continue
        if planned.kind is SignalKind.BREACH:
            clock = planned.cycle.clock.value
            if (clock, "running") in open_now:
                open_now[open_now.index((clock, "running"))] = (clock, "breached")
        emitted[planned.key] = Announced(planned.moment)
        signals.append(
            ClockSignal(
                planned.kind,
                planned.cycle,
                fired_at=at,
                moment=planned.moment,
                deadline=planned.deadline,
                deadline_version=planned.deadline_version,
                warn_at=planned.warn_at,
                late=at - planned.moment > late_after,
                level=planned.level,
                audience=planned.audience,
            )
        )
    rest = plan[fired:]
    after = replace(
        record,
        emitted=MappingProxyType(emitted),
        open=tuple(sorted(open_now)),
        plan=rest,
    )
    next_due = rest[0].moment if len(rest) else None
    return Settlement(after, tuple(signals), (), (), next_due)


def _facts(cycle: ClockCycle) -> tuple[datetime, int, datetime]:
    """(deadline, deadline version, warn_at) a signal about ``cycle`` carries."""
    span = cycle.current_span
    deadline = (
        cycle.breached_at
        or (span.deadline if span else None)
        or cycle.started_at + cycle.target  # never ran (paused from its start): nominal
    )
    warn_at = cycle.warn_at(span) if span is not None else None
    return deadline, cycle.deadline_version, warn_at or deadline


def _thresholds(
    cycle: ClockCycle,
    at: datetime,
    emitted: dict[str, Announced],
    *,
    announce: Announce,
    late: Callable[[datetime], bool],
    next_moments: list[datetime],
) -> None:
    base = cycle.key
    span = cycle.current_span
    if cycle.state is CycleState.RUNNING and span is not None and span.deadline is not None:
        warn_at = cycle.warn_at(span)
        key = f"{base}/warning/{_ms(span.deadline)}"
        if warn_at is not None and key not in emitted:
            if warn_at > at:
                next_moments.append(warn_at)
            elif at >= span.deadline:
                # Suppressed: its deadline has passed already, the breach says more.
                emitted[key] = Announced(warn_at, retracted=True)
            else:
                announce(
                    key,
                    ClockSignal(
                        SignalKind.WARNING,
                        cycle.facts,
                        fired_at=at,
                        moment=warn_at,
                        deadline=span.deadline,
                        deadline_version=span.version,
                        warn_at=warn_at,
                        late=late(warn_at),
                    ),
                )
        if cycle.breached_at is None:
            next_moments.append(span.deadline)
    breach = cycle.breached_at
    if breach is None:
        return
    key = f"{base}/breach"
    previous = emitted.get(key)
    if previous is None or previous.retracted:
        _, version, warn_at = _facts(cycle)
        announce(
            key,
            ClockSignal(
                SignalKind.BREACH,
                cycle.facts,
                fired_at=at,
                moment=breach,
                deadline=breach,
                deadline_version=version,
                warn_at=warn_at,
                late=late(breach),
            ),
        )
    if cycle.state is not CycleState.RUNNING:
        return  # escalations go out while the cycle runs (not closed, not waiting on the customer)
    for level, offset, audience in cycle.escalations:
        moment = breach + offset
        key = f"{base}/escalation-{level}"
        if key in emitted:
            continue
        if moment > at:
            next_moments.append(moment)
            break
        _, version, warn_at = _facts(cycle)
        announce(
            key,
            ClockSignal(
                SignalKind.ESCALATION,
                cycle.facts,
                fired_at=at,
                moment=moment,
                deadline=breach,
                deadline_version=version,
                warn_at=warn_at,
                late=late(moment),
                level=level,
                audience=audience,
            ),
        )


def _outcome(
    cycle: ClockCycle, at: datetime, emitted: dict[str, Announced], announce: Announce
) -> None:
    if cycle.closed_at is None or cycle.state not in _OUTCOMES:
        return
    kind, name = _OUTCOMES[cycle.state]
    key = f"{cycle.key}/{name}"
    if key in emitted:
        return
    deadline, version, warn_at = _facts(cycle)
    reason = (cycle.stop_reason or "work order cancelled") if kind is SignalKind.STOPPED else ""
    announce(
        key,
        ClockSignal(
            kind,
            cycle.facts,
            fired_at=at,
            moment=cycle.closed_at,
            deadline=deadline,
            deadline_version=version,
            warn_at=warn_at,
            reason=reason,
        ),
    )


_OUTCOMES = {
    CycleState.MET: (SignalKind.MET, "met"),
    CycleState.CANCELLED: (SignalKind.STOPPED, "stopped"),
}
"""The closed cycles that say so, once: met, and stopped without the milestone (a missed one
said so with its breach)."""


def _prediction(
    cycle: ClockCycle, at: datetime, emitted: dict[str, Announced], announce: Announce
) -> None:
    prediction = cycle.prediction
    span = cycle.current_span
    if (
        prediction is None
        or not cycle.is_open
        or cycle.breached_at is not None
        or span is None
        or span.deadline is None
        or cycle.state is not CycleState.RUNNING
        or prediction.expected_at <= span.deadline
    ):
        return
    key = f"{cycle.key}/at_risk/{_ms(prediction.expected_at)}/{_ms(span.deadline)}"
    if key in emitted:
        return
    announce(
        key,
        ClockSignal(
            SignalKind.AT_RISK,
            cycle.facts,
            fired_at=at,
            moment=at,
            deadline=span.deadline,
            deadline_version=span.version,
            warn_at=cycle.warn_at(span) or span.deadline,
            predicted_at=prediction.expected_at,
            basis=prediction.basis,
        ),
    )


def _retractions(
    by_key: Mapping[str, ClockCycle],
    before: Mapping[str, Announced],
    at: datetime,
    emitted: dict[str, Announced],
    signals: list[ClockSignal],
) -> None:
    for key, announced in before.items():
        if not key.endswith("/breach") or announced.retracted:
            continue
        cycle = by_key.get(key.removesuffix("/breach"))
        if cycle is not None and cycle.breached_at is not None:
            continue
        if cycle is None:
            continue
        emitted[key] = Announced(announced.moment, retracted=True)
        deadline, version, warn_at = _facts(cycle)
        signals.append(
            ClockSignal(
                SignalKind.BREACH_RETRACTED,
                cycle.facts,
                fired_at=at,
                moment=announced.moment,
                deadline=deadline,
                deadline_version=version,
                warn_at=warn_at,
                reason="a late event shows the milestone was not missed",
            )
        )


def _recomputed(cycle: ClockCycle, at: datetime, before: KnownCycle) -> ClockSignal:
    deadline, version, warn_at = _facts(cycle)
    return ClockSignal(
        SignalKind.RECOMPUTED,
        cycle.facts,
        fired_at=at,
        moment=at,
        deadline=deadline,
        deadline_version=version,
        warn_at=warn_at,
        previous_deadline=before.deadline,
        previous_state=before.state,
        reason="a late or out-of-order event was replayed",
    )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def open_conditions(cycles: Sequence[ClockCycle]) -> tuple[tuple[str, str], ...]:
    """(clock, condition) of each open cycle: ``breached`` if it was, else running or paused."""
    return tuple(
        sorted(
            (cycle.clock.value, "breached" if cycle.breached_at else cycle.state.value)
            for cycle in cycles
            if cycle.is_open
        )
    )
