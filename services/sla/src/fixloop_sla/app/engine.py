"""Use cases of the sla service: record an order's lifecycle facts and settle its clocks.

Every consumed lifecycle event and every timer that comes due is one settlement of one order
(:func:`fixloop_sla.domain.settle`): load the order's clocks, decide, save the order (conditional
on the version it was read at) with its outgoing events in the outbox and its closed cycles'
final records, all in one unit of work. A redelivered event, a second timer pass, another pod or
a restart in between therefore never announces the same threshold twice.

Due orders are settled in batches (one transaction for many orders), which is what keeps a burst
of thousands of clocks due in the same second on time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from fixloop_shared.contracts import (
    EventPayload,
    SlaAtRisk,
    SlaBreached,
    SlaBreachRetracted,
    SlaEscalated,
    SlaMet,
    SlaRecomputed,
    SlaStopped,
    SlaWarning,
)
from fixloop_shared.envelope import Event
from fixloop_shared.errors import TransientError, UnauthorizedSource
from fixloop_shared.kernel import UnitOfWork, UnitsOfWork
from fixloop_shared.topics import Topic
from fixloop_sla.domain import (
    DEFAULT_LATE_AFTER,
    ClockSignal,
    CycleState,
    OrderClocks,
    OrderFact,
    OrderProfile,
    PolicyBook,
    Settlement,
    SignalKind,
    fire_plan,
    record_fact,
    settle,
)
from fixloop_sla.domain.cycles import clock_id_for

log = logging.getLogger(__name__)


MAX_READ_AHEAD = 50_000
"""Orders held read ahead of their timers, at most."""


class ConcurrentOrderChangeError(TransientError):
    """The order's clocks changed between load and save; read them again and decide again."""


class ForeignTenant(UnauthorizedSource):
    """An event about a work order of another tenant: never applied, dead-lettered."""


@dataclass(frozen=True)
class SavedOrder:
    """An order's clocks as saved: where its timer goes, and how its open cycles changed."""

    work_order_id: str
    partition: int | None
    next_due: datetime | None
    before: OrderClocks | None
    settlement: Settlement
    fired_from_plan: bool = False
    """Settled from its plan alone (read without its facts): only what the plan moves is saved."""

    @property
    def needs_saving(self) -> bool:
        after = self.settlement.record
        before = self.before
        if before is None or self.settlement.changed or after.emitted != before.emitted:
            return True
        if self.fired_from_plan:  # a fired plan only loses its head
            return len(after.plan or ()) != len(before.plan or ())
        return after.plan != before.plan


class OrderClocksRepository(Protocol):
    """Where orders' clocks live; reads and writes inside a unit of work use its session."""

    async def load(
        self, uow: UnitOfWork, work_order_ids: Sequence[str], *, for_timers: bool = False
    ) -> dict[str, OrderClocks]:
        """The stored clocks of these orders (absent ones left out), read in few round trips.

        ``for_timers``: without their facts (what firing a plan needs; records whose plan is
        unknown come without it too, and are read again in full)."""

    async def save(self, uow: UnitOfWork, saved: Sequence[SavedOrder]) -> None:
        """Write each settled order if it is still at the version it was read at (else raise
        :class:`ConcurrentOrderChangeError`), with its closed cycles' final records."""

    async def read_ahead(self, work_order_ids: Sequence[str]) -> Mapping[str, object]:
        """These orders as the timers read them, outside any unit of work (to be adopted)."""

    def adopt(self, uow: UnitOfWork, ahead: Mapping[str, object]) -> dict[str, OrderClocks]:
        """Orders read ahead, as if read in ``uow`` (their save is still conditional on the
        version they were read at)."""


class PolicySource(Protocol):
    def book(self) -> PolicyBook: ...


class TimerSchedule(Protocol):
    def schedule(self, work_order_id: str, partition: int | None, due: datetime | None) -> None:
        """Look at the order again at ``due`` (None: nothing pending), if this pod owns it."""


class SlaObserver(Protocol):
    def settled(self, saved: Sequence[SavedOrder]) -> None:
        """Committed: count the announcements and move the gauges."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class SlaEngine:
    def __init__(
        self,
        *,
        units: UnitsOfWork,
        repository: OrderClocksRepository,
        policies: PolicySource,
        timers: TimerSchedule,
        observer: SlaObserver,
        late_after: timedelta = DEFAULT_LATE_AFTER,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._units = units
        self._repo = repository
        self._policies = policies
        self._timers = timers
        self._observer = observer
        self._late_after = late_after
        self._now = now
        self._memo_key = object()
        self._ahead: dict[str, object] = {}
        """Orders read ahead of their timers (see :meth:`read_ahead`)."""

    # -- consumed events --------------------------------------------------------------------

    async def preload(self, events: Sequence[Event[EventPayload]], uow: UnitOfWork) -> None:
        """Read the orders a batch of events is about, in one go."""
        ids = sorted({order for event in events if (order := _work_order_of(event)) is not None})
        if ids:
            self._memo(uow).update(await self._repo.load(uow, ids))

    async def record(
        self,
        event: Event[Any],
        uow: UnitOfWork,
        fact: OrderFact | None,
        *,
        work_order_id: str,
        profile: OrderProfile | None = None,
        contractor_id: str | None = None,
    ) -> Settlement | None:
        """Record one lifecycle fact of an order (``profile`` with its receipt) and settle."""
        envelope = event.envelope
        memo = self._memo(uow)
        if work_order_id not in memo:
            memo.update(await self._repo.load(uow, [work_order_id]))
        before = memo.get(work_order_id)
        if before is not None and before.tenant != envelope.tenant:
            msg = f"work order {work_order_id} belongs to another tenant"
            raise ForeignTenant(msg)
        record = before or OrderClocks(
            work_order_id=work_order_id,
            tenant=envelope.tenant,
            correlation_id=envelope.correlationid,
        )
        if profile is not None and record.profile is None:
            record = replace(record, profile=profile)
        if contractor_id is not None:
            record = replace(record, contractor_id=contractor_id)
        if event.partition is not None:
            record = replace(record, partition=event.partition)
        now = self._now()
        book = self._policies.book()
        replayed = False
        if fact is not None:
            recorded = record_fact(
                record, fact, now=now, allowed_lateness=book.active.allowed_lateness
            )
            if recorded.too_late:
                log.warning(
                    "an event older than the allowed lateness no longer moves the clocks",
                    extra={"work_order_id": work_order_id, "event_id": fact.event_id},
                )
            record, replayed = recorded.record, recorded.replayed
        settlement = settle(record, book, now, replayed=replayed, late_after=self._late_after)
        saved = SavedOrder(work_order_id, record.partition, settlement.next_due, before, settlement)
        await self._repo.save(uow, [saved])
        memo[work_order_id] = replace(settlement.record, version=settlement.record.version + 1)
        self._emit(uow, settlement)

        def committed() -> None:
            self._ahead.pop(work_order_id, None)  # read before this event: stale
            self._committed([saved])

        uow.after_commit(committed)
        return settlement

    # -- timers -----------------------------------------------------------------------------

    async def read_ahead(self, work_order_ids: Sequence[str]) -> None:
        """Read orders about to come due, so that firing them reads nothing (a read is the
        slowest part of firing thousands at once on a slow store). At most
        :data:`MAX_READ_AHEAD` are held; one changed meanwhile fails its save, and its batch is
        settled again from the store."""
        wanted = [i for i in work_order_ids if i not in self._ahead]
        room = MAX_READ_AHEAD - len(self._ahead)
        if wanted and room > 0:
            self._ahead.update(await self._repo.read_ahead(wanted[:room]))

    async def settle_due(self, work_order_ids: Sequence[str]) -> dict[str, datetime | None]:
        """Settle these orders now, in one unit of work; returns each one's next due moment.

        An order not found (gone, or another pod's) is left out. A concurrent change of one of
        them fails the whole batch (:class:`ConcurrentOrderChangeError`): the caller retries.
        """
        ahead = {i: self._ahead.pop(i) for i in work_order_ids if i in self._ahead}
        if ahead:
            try:
                return await self._settle_due(work_order_ids, ahead)
            except ConcurrentOrderChangeError:
                log.info("orders read ahead changed meanwhile; reading them again")
        return await self._settle_due(work_order_ids, {})

    async def _settle_due(
        self, work_order_ids: Sequence[str], ahead: Mapping[str, object]
    ) -> dict[str, datetime | None]:
        book = self._policies.book()
        async with self._units.transaction() as uow:
            records = self._repo.adopt(uow, ahead)
            unread = [i for i in work_order_ids if i not in records]
            if unread:
                records.update(await self._repo.load(uow, unread, for_timers=True))
            unplanned = [i for i, record in records.items() if record.plan is None]
            if unplanned:
                records.update(await self._repo.load(uow, unplanned))
            now = self._now()
            saved: list[SavedOrder] = []
            for work_order_id, record in records.items():
                if record.plan is None:
                    settlement = settle(record, book, now, late_after=self._late_after)
                else:
                    settlement = fire_plan(record, now, late_after=self._late_after)
                saved.append(
                    SavedOrder(
                        work_order_id,
                        record.partition,
                        settlement.next_due,
                        record,
                        settlement,
                        fired_from_plan=record.plan is not None,
                    )
                )
            changed = [s for s in saved if s.needs_saving]
            if changed:
                await self._repo.save(uow, changed)
                for item in changed:
                    self._emit(uow, item.settlement)
        self._committed(saved)
        return {item.work_order_id: item.next_due for item in saved}

    # -- outgoing ---------------------------------------------------------------------------

    def _committed(self, saved: Sequence[SavedOrder]) -> None:
        for item in saved:
            self._timers.schedule(item.work_order_id, item.partition, item.next_due)
        self._observer.settled(saved)

    def _emit(self, uow: UnitOfWork, settlement: Settlement) -> None:
        record = settlement.record
        for signal in settlement.signals:
            uow.emit(
                sla_event(record.work_order_id, signal),
                topic=Topic.SLA_EVENTS,
                key=record.work_order_id,
                tenant=record.tenant,
                correlationid=record.correlation_id,
            )

    def _memo(self, uow: UnitOfWork) -> dict[str, OrderClocks]:
        memo = uow.memo.setdefault(self._memo_key, {})
        assert isinstance(memo, dict)  # noqa: S101 - only this engine writes its memo entry
        return memo


def _work_order_of(event: Event[EventPayload]) -> str | None:
    work_order_id = getattr(event.payload, "work_order_id", None)
    return work_order_id if isinstance(work_order_id, str) else None


def sla_event(  # noqa: PLR0911 - one event type per kind of signal
    work_order_id: str, signal: ClockSignal
) -> EventPayload:
    """The wire event of one signal about one cycle."""
    cycle = signal.cycle
    facts: dict[str, Any] = {
        "work_order_id": work_order_id,
        "clock_id": clock_id_for(work_order_id, cycle.clock, cycle.number),
        "milestone": cycle.clock,
        "cycle": cycle.number,
        "started_at": cycle.started_at,
        "warn_at": signal.warn_at,
        "due_at": signal.deadline,
        "deadline_version": signal.deadline_version,
        "policy": cycle.policy_name,
        "policy_version": cycle.policy_version,
    }
    kind = signal.kind
    if kind is SignalKind.WARNING:
        return SlaWarning(**facts, fired_at=signal.fired_at, late=signal.late)
    if kind is SignalKind.BREACH:
        return SlaBreached(**facts, fired_at=signal.fired_at, late=signal.late)
    if kind is SignalKind.ESCALATION:
        return SlaEscalated(
            **facts,
            fired_at=signal.fired_at,
            late=signal.late,
            level=signal.level,
            audience=signal.audience or "operator",
            overdue_seconds=max(0.0, (signal.fired_at - signal.deadline).total_seconds()),
        )
    if kind is SignalKind.MET:
        return SlaMet(**facts, stopped_at=signal.moment)
    if kind is SignalKind.STOPPED:
        return SlaStopped(**facts, stopped_at=signal.moment, reason=signal.reason[:500])
    if kind is SignalKind.RECOMPUTED:
        previous = signal.previous_state or CycleState.RUNNING
        return SlaRecomputed(
            **facts,
            recomputed_at=signal.fired_at,
            previous_due_at=signal.previous_deadline,
            previous_outcome=previous.value,
            outcome=cycle.state.value,
            reason=signal.reason,
        )
    if kind is SignalKind.BREACH_RETRACTED:
        return SlaBreachRetracted(
            **facts, retracted_at=signal.fired_at, breached_at=signal.moment, reason=signal.reason
        )
    assert signal.predicted_at is not None  # noqa: S101 - an at-risk signal carries its ETA
    return SlaAtRisk(
        **facts,
        fired_at=signal.fired_at,
        predicted_at=signal.predicted_at,
        predicted_lateness_seconds=(signal.predicted_at - signal.deadline).total_seconds(),
        basis=signal.basis,
    )


__all__ = [
    "ConcurrentOrderChangeError",
    "ForeignTenant",
    "OrderClocksRepository",
    "SavedOrder",
    "SlaEngine",
    "sla_event",
    "utc_now",
]
