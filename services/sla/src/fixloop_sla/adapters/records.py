"""How an order's clocks and its closed cycles are written down (MongoDB documents).

Instants are stored as epoch milliseconds (UTC): exact at the domain's resolution, compared by
number in every store, and unaffected by drivers or stores that handle dates differently.

``sla_orders``: one document per work order (``_id``), with its facts, pins, what was announced,
the summary of its open cycles (for the at-risk list), ``next_due_ms`` (the next moment a timer
must look at it; :data:`NEVER` when nothing is pending) and ``partition`` (the Kafka partition its
events come from: the pod that owns that partition owns its timers).

``sla_cycles``: the final record of each closed cycle (outcome, breach margin, paused total,
business and wall time, policy and calendar versions), written again with ``revision`` + 1 when a
late event changes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, overload

from fixloop_shared.vocabulary import ActorKind, DelayCause, Milestone, WorkOrderState
from fixloop_sla.domain import (
    Announced,
    ClockCycle,
    CycleState,
    FactKind,
    KnownCycle,
    OrderClocks,
    OrderFact,
    OrderProfile,
    Planned,
    Settlement,
    SignalKind,
)
from fixloop_sla.domain.cycles import CycleFacts

NEVER = 9_000_000_000_000_000
"""``next_due_ms`` of an order with nothing pending (later than any due query asks for)."""


def ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def instant(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, int):
        msg = f"expected epoch milliseconds, got {value!r}"
        raise TypeError(msg)
    return datetime.fromtimestamp(value / 1000, UTC)


def _required(value: object) -> datetime:
    moment = instant(value)
    if moment is None:
        msg = "a required instant is missing"
        raise TypeError(msg)
    return moment


def fact_document(fact: OrderFact) -> dict[str, object]:
    return {
        "id": fact.event_id,
        "kind": fact.kind.value,
        "at": ms(fact.occurred_at),
        "state": fact.state.value,
        "actor": fact.actor.value,
        "v": fact.order_version,
        "eta": ms(fact.eta),
        "cause": None if fact.cause is None else fact.cause.value,
        "reason": fact.reason,
    }


def fact_of(doc: Mapping[str, Any]) -> OrderFact:
    return OrderFact(
        event_id=str(doc["id"]),
        kind=FactKind(doc["kind"]),
        occurred_at=_required(doc["at"]),
        state=WorkOrderState(doc["state"]),
        actor=ActorKind(doc["actor"]),
        order_version=int(doc.get("v") or 0),
        eta=instant(doc.get("eta")),
        cause=None if doc.get("cause") is None else DelayCause(doc["cause"]),
        reason=doc.get("reason"),
    )


def order_document(settlement: Settlement, *, version: int) -> dict[str, Any]:
    """The stored document of an order after ``settlement``, at ``version``."""
    record = settlement.record
    profile = record.profile
    open_cycles = [cycle for cycle in settlement.cycles if cycle.is_open]
    earliest = [
        value
        for cycle in open_cycles
        if (value := ms(cycle.breached_at or cycle.deadline)) is not None
    ]
    return {
        "_id": record.work_order_id,
        "tenant": record.tenant,
        "correlation_id": record.correlation_id,
        "partition": record.partition,
        "version": version,
        "contractor_id": record.contractor_id,
        "profile": None
        if profile is None
        else {
            "priority": profile.priority,
            "equipment_class": profile.equipment_class,
            "category": profile.category,
            "site_timezone": profile.site_timezone,
        },
        "facts": [fact_document(fact) for fact in record.facts],
        "pins": dict(record.pins),
        "emitted": {key: [ms(a.moment), a.retracted] for key, a in record.emitted.items()},
        "known": {key: [ms(k.deadline), k.state.value] for key, k in record.known.items()},
        "ignored_facts": record.ignored_facts,
        "open_conditions": [list(pair) for pair in record.open],
        "plan": [plan_entry(p) for p in record.plan or ()],
        "open": [open_summary(cycle) for cycle in open_cycles],
        "earliest_deadline_ms": min(earliest) if earliest else None,
        "next_due_ms": NEVER if settlement.next_due is None else ms(settlement.next_due),
    }


def plan_entry(planned: Planned) -> list[object]:
    cycle = planned.cycle
    return [
        planned.key,
        planned.kind.value,
        ms(planned.moment),
        cycle.clock.value,
        cycle.number,
        ms(cycle.started_at),
        cycle.policy_name,
        cycle.policy_version,
        cycle.state.value,
        ms(cycle.breached_at),
        ms(planned.deadline),
        planned.deadline_version,
        ms(planned.warn_at),
        planned.level,
        planned.audience,
    ]


_KINDS: Mapping[str, SignalKind] = {kind.value: kind for kind in SignalKind}
_CLOCKS: Mapping[str, Milestone] = {clock.value: clock for clock in Milestone}
_STATES: Mapping[str, CycleState] = {state.value: state for state in CycleState}


def planned_of(entry: Sequence[Any]) -> Planned:
    """A plan entry as stored (a list of plain values; read often, so read plainly)."""
    (key, kind, moment, clock, number, started, policy, version, state, breached) = entry[:10]
    deadline, deadline_version, warn_at, level, audience = entry[10:15]
    at = datetime.fromtimestamp
    return Planned(
        key=str(key),
        kind=_KINDS[kind],
        moment=at(int(moment) / 1000, UTC),
        cycle=CycleFacts(
            clock=_CLOCKS[clock],
            number=int(number),
            started_at=at(int(started) / 1000, UTC),
            policy_name=str(policy),
            policy_version=int(version),
            state=_STATES[state],
            breached_at=None if breached is None else at(int(breached) / 1000, UTC),
        ),
        deadline=at(int(deadline) / 1000, UTC),
        deadline_version=int(deadline_version),
        warn_at=at(int(warn_at) / 1000, UTC),
        level=int(level),
        audience=str(audience),
    )


class StoredPlan(Sequence[Planned]):
    """A stored plan, each entry read when it is first looked at: a timer firing an order reads
    the head of its plan, not the whole of it."""

    def __init__(self, entries: Sequence[Any]) -> None:
        self._entries = entries
        self._read: dict[int, Planned] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @overload
    def __getitem__(self, index: int) -> Planned: ...

    @overload
    def __getitem__(self, index: slice) -> StoredPlan: ...

    def __getitem__(self, index: int | slice) -> Planned | StoredPlan:
        if isinstance(index, slice):
            return StoredPlan(self._entries[index])
        if index < 0:
            index += len(self._entries)
        found = self._read.get(index)
        if found is None:
            found = self._read[index] = planned_of(self._entries[index])
        return found

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]


def open_summary(cycle: ClockCycle) -> dict[str, object]:
    span = cycle.current_span
    prediction = cycle.prediction
    return {
        "clock": cycle.clock.value,
        "cycle": cycle.number,
        "state": cycle.state.value,
        "started_ms": ms(cycle.started_at),
        "deadline_ms": ms(cycle.deadline) if cycle.state is CycleState.RUNNING else None,
        "warn_ms": ms(cycle.warn_at(span))
        if span is not None and cycle.state is CycleState.RUNNING
        else None,
        "breached_ms": ms(cycle.breached_at),
        "predicted_ms": None if prediction is None else ms(prediction.expected_at),
        "basis": None if prediction is None else prediction.basis,
        "policy_version": cycle.policy_version,
    }


def order_of(doc: Mapping[str, Any]) -> OrderClocks:
    profile = doc.get("profile")
    return OrderClocks(
        work_order_id=str(doc["_id"]),
        tenant=str(doc["tenant"]),
        correlation_id=str(doc.get("correlation_id") or doc["_id"]),
        profile=None
        if not profile
        else OrderProfile(
            tenant=str(doc["tenant"]),
            priority=str(profile["priority"]),
            equipment_class=str(profile["equipment_class"]),
            category=str(profile["category"]),
            site_timezone=profile.get("site_timezone"),
        ),
        facts=tuple(fact_of(fact) for fact in doc.get("facts") or ()),
        pins=MappingProxyType({str(k): int(v) for k, v in (doc.get("pins") or {}).items()}),
        emitted=MappingProxyType(
            {
                str(key): Announced(_required(value[0]), bool(value[1]))
                for key, value in (doc.get("emitted") or {}).items()
            }
        ),
        known=MappingProxyType(
            {
                str(key): KnownCycle(instant(value[0]), CycleState(value[1]))
                for key, value in (doc.get("known") or {}).items()
            }
        ),
        ignored_facts=int(doc.get("ignored_facts") or 0),
        contractor_id=doc.get("contractor_id"),
        open=tuple((str(a), str(b)) for a, b in doc.get("open_conditions") or ()),
        plan=None if "plan" not in doc else StoredPlan(doc["plan"] or ()),
        partition=doc.get("partition"),
        version=int(doc["version"]),
    )


def cycle_record(record: OrderClocks, cycle: ClockCycle) -> dict[str, object]:
    """The final record of a closed cycle (without ``_id`` and ``revision``)."""
    profile = record.profile
    closed = cycle.closed_at
    deadline = cycle.breached_at or cycle.deadline
    margin = None if closed is None or deadline is None else (closed - deadline).total_seconds()
    return {
        "work_order_id": record.work_order_id,
        "tenant": record.tenant,
        "clock": cycle.clock.value,
        "cycle": cycle.number,
        "outcome": cycle.state.value,
        "breached": cycle.breached_at is not None,
        "started_ms": ms(cycle.started_at),
        "closed_ms": ms(closed),
        "deadline_ms": ms(deadline),
        "original_deadline_ms": ms(cycle.original_deadline),
        "breach_margin_seconds": margin,
        "paused_seconds": cycle.paused_total.total_seconds(),
        "business_seconds": cycle.business_elapsed.total_seconds(),
        "wall_seconds": cycle.wall_elapsed.total_seconds(),
        "policy_name": cycle.policy_name,
        "policy_version": cycle.policy_version,
        "calendar": cycle.calendar,
        "calendar_version": cycle.calendar_version,
        "timezone": cycle.timezone,
        "timezone_source": cycle.timezone_source,
        "contractor_id": record.contractor_id,
        "equipment_class": None if profile is None else profile.equipment_class,
        "priority": None if profile is None else profile.priority,
        "category": None if profile is None else profile.category,
    }


def cycle_record_id(work_order_id: str, cycle: ClockCycle) -> str:
    return f"{work_order_id}/{cycle.clock.value}/{cycle.number}"
