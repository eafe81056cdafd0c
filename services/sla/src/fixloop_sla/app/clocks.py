"""Use cases of the sla service: start, stop, cancel and fire milestone clocks.

Each use case is one unit of work: load the clock, let the domain decide, save the new clock
(conditionally on the version it was loaded at) and queue its events in the outbox, all in one
transaction. A redelivered event, a second scheduler pass, a second pod or a restart in between
therefore never emits the same warning, breach or met twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from fixloop_shared.contracts import (
    AssignmentAccepted,
    EventPayload,
    Milestone,
    SlaBreached,
    SlaClockFacts,
    SlaMet,
    SlaStopped,
    SlaWarning,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderReceived,
)
from fixloop_shared.envelope import Event
from fixloop_shared.errors import TransientError, UnauthorizedSource
from fixloop_shared.kernel import UnitOfWork, UnitsOfWork
from fixloop_shared.topics import Topic
from fixloop_sla.domain import (
    DEFAULT_LATE_AFTER,
    ClockSignal,
    ClockStop,
    MilestoneClock,
    SignalKind,
    SlaPolicy,
    Transition,
    clock_id_for,
    clock_ids_of,
)
from fixloop_sla.metrics import ClockCounts, SlaMetrics

log = logging.getLogger(__name__)

DISPATCH = Milestone.DISPATCH_CONFIRMATION
_MAX_REMEMBERED_FAILURES = 10_000
CANCELLED_WITHOUT_REASON = "work order cancelled"
"""The stop reason of a cancellation whose event gives none."""


class ConcurrentClockChangeError(TransientError):
    """The clock (or its stop record) changed between load and save; reload and decide again."""


class ForeignTenant(UnauthorizedSource):
    """An event about a work order of another tenant: never applied, dead-lettered."""


class ClockRepository(Protocol):
    """Where clocks live; reads and writes inside a unit of work use its session."""

    async def load(self, uow: UnitOfWork, clock_ids: Sequence[str]) -> None:
        """Read these clocks and their early stops in one go, for :meth:`get` and
        :meth:`get_stop` in the same unit of work (a batch of events)."""

    async def get(self, uow: UnitOfWork, clock_id: str) -> MilestoneClock | None: ...

    async def add(self, uow: UnitOfWork, clock: MilestoneClock) -> None:
        """Insert a new clock; raises ConcurrentClockChangeError if it already exists."""

    async def update(self, uow: UnitOfWork, transition: Transition) -> None:
        """Save ``transition.after`` if the stored clock is still ``transition.before``.

        Raises ConcurrentClockChangeError otherwise.
        """

    async def get_stop(self, uow: UnitOfWork, clock_id: str) -> ClockStop | None: ...

    async def add_stop(self, uow: UnitOfWork, stop: ClockStop) -> None:
        """Record a stop that arrived before its clock; ConcurrentClockChangeError if one exists."""

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Ids of running clocks with something due at ``now``, earliest first."""

    async def counts(self) -> list[ClockCounts]: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class SlaClocks:
    def __init__(
        self,
        *,
        store: UnitsOfWork,
        repository: ClockRepository,
        policy: SlaPolicy,
        metrics: SlaMetrics,
        late_after: timedelta = DEFAULT_LATE_AFTER,
        now: Callable[[], datetime] = utc_now,
        attempts: int = 5,
    ) -> None:
        self._store = store
        self._repo = repository
        self._policy = policy
        self._metrics = metrics
        self._late_after = late_after
        self._now = now
        self._attempts = attempts
        self._failing: set[str] = set()
        # One clock transaction at a time in this process: the consumer and the scheduler never
        # race each other on a clock (across processes the version check settles it), and
        # stores that do not isolate concurrent transactions from one another stay correct.
        self._serial = asyncio.Lock()

    # -- consumed events ------------------------------------------------------------------

    async def start_dispatch_clock(
        self, event: Event[WorkOrderReceived], uow: UnitOfWork
    ) -> Transition | None:
        """A work order was received: its dispatch-confirmation clock starts at ``received_at``.

        A clock changed meanwhile by another process raises ConcurrentClockChangeError
        (transient): the kernel applies the event again.
        """
        envelope, received = event.envelope, event.payload
        policy = self._policy.for_milestone(DISPATCH)
        if policy is None:
            return None
        clock_id = clock_id_for(received.work_order_id, policy.milestone)
        if await self._repo.get(uow, clock_id) is not None:
            log.info("clock already started", extra={"clock_id": clock_id})
            return None
        clock = MilestoneClock.start(
            work_order_id=received.work_order_id,
            tenant=received.tenant,
            correlation_id=envelope.correlationid,
            policy=policy,
            started_at=received.received_at,
        )
        transition = await self._first_decision(uow, clock)
        await self._repo.add(uow, transition.after)
        self._emit(uow, transition)

        def committed() -> None:
            self._metrics.clock_started(DISPATCH)
            self._metrics.transition_committed(transition)

        uow.after_commit(committed)
        return transition

    async def preload(self, events: Sequence[Event[EventPayload]], uow: UnitOfWork) -> None:
        """Read the clocks a batch of events is about, in one go."""
        ids: list[str] = []
        for event in events:
            payload = event.payload
            if isinstance(payload, WorkOrderReceived | AssignmentAccepted | WorkOrderAssigned):
                ids.append(clock_id_for(payload.work_order_id, DISPATCH))
            elif isinstance(payload, WorkOrderCancelled):
                ids.extend(clock_ids_of(payload.work_order_id))
        if ids:
            await self._repo.load(uow, ids)

    async def _first_decision(self, uow: UnitOfWork, clock: MilestoneClock) -> Transition:
        """A stop recorded before the start wins; otherwise fire what is already due."""
        now = self._now()
        stop = await self._repo.get_stop(uow, clock.clock_id)
        if stop is not None and stop.tenant == clock.tenant:
            return clock.stop(stop.stopped_at, now=now, late_after=self._late_after)
        if stop is not None:
            log.warning(
                "ignoring a stop recorded for another tenant",
                extra={"clock_id": clock.clock_id, "stop_event": stop.event_id},
            )
        return clock.fire(now, late_after=self._late_after)

    async def stop_dispatch_clock(
        self, event: Event[AssignmentAccepted], uow: UnitOfWork
    ) -> Transition | None:
        """A contractor accepted: the dispatch-confirmation clock stops at ``accepted_at``."""
        envelope, accepted = event.envelope, event.payload
        stop = ClockStop(
            work_order_id=accepted.work_order_id,
            milestone=DISPATCH,
            tenant=envelope.tenant,
            stopped_at=accepted.accepted_at,
            event_id=envelope.id,
        )
        clock = await self._repo.get(uow, stop.clock_id)
        if clock is None:
            # The stop overtook the start: remember it, so the start stops the clock at once.
            if await self._repo.get_stop(uow, stop.clock_id) is None:
                await self._repo.add_stop(uow, stop)
            return None
        return await self._stop(uow, clock, stop)

    async def stop_dispatch_clock_on_assignment(
        self, event: Event[WorkOrderAssigned], uow: UnitOfWork
    ) -> Transition | None:
        """The orders service assigned the work order (a contractor accepted): the
        dispatch-confirmation clock stops at ``occurred_at``, as on an accepted assignment;
        whichever of the two comes first stops it, the other changes nothing."""
        envelope, assigned = event.envelope, event.payload
        stop = ClockStop(
            work_order_id=assigned.work_order_id,
            milestone=DISPATCH,
            tenant=envelope.tenant,
            stopped_at=assigned.occurred_at,
            event_id=envelope.id,
        )
        clock = await self._repo.get(uow, stop.clock_id)
        if clock is None:
            # On the orders topic, after its received: an order without a clock gets none.
            log.info(
                "no dispatch clock to stop for an assigned work order",
                extra={"work_order_id": stop.work_order_id, "clock_id": stop.clock_id},
            )
            return None
        return await self._stop(uow, clock, stop)

    async def _stop(
        self, uow: UnitOfWork, clock: MilestoneClock, stop: ClockStop
    ) -> Transition | None:
        if clock.tenant != stop.tenant:
            msg = f"work order {stop.work_order_id} belongs to another tenant"
            raise ForeignTenant(msg)
        transition = clock.stop(stop.stopped_at, now=self._now(), late_after=self._late_after)
        if not transition.changed:
            return None
        await self._repo.update(uow, transition)
        self._emit(uow, transition)
        uow.after_commit(lambda: self._metrics.transition_committed(transition))
        return transition

    async def stop_clocks_of_cancelled_order(
        self, event: Event[WorkOrderCancelled], uow: UnitOfWork
    ) -> list[Transition]:
        """The work order was cancelled: each of its clocks stops without its milestone at
        ``occurred_at`` and says so (``SlaStopped``); nothing fires on them any more.

        The stored clocks say so (state ``stopped``, no next moment), so no scheduler, in this
        process or any other, before or after a restart, finds them due. A clock stopped
        already changes nothing and emits nothing (a redelivery, a late cancellation).
        """
        envelope, cancelled = event.envelope, event.payload
        clocks = [
            clock
            for clock_id in clock_ids_of(cancelled.work_order_id)
            if (clock := await self._repo.get(uow, clock_id)) is not None
        ]
        if not clocks:
            log.info(
                "no clock to stop for a cancelled work order",
                extra={"work_order_id": cancelled.work_order_id},
            )
            return []
        if any(clock.tenant != envelope.tenant for clock in clocks):
            msg = f"work order {cancelled.work_order_id} belongs to another tenant"
            raise ForeignTenant(msg)
        reason = cancelled.reason or CANCELLED_WITHOUT_REASON
        now = self._now()
        transitions: list[Transition] = []
        for clock in clocks:
            transition = clock.cancel(
                cancelled.occurred_at, reason=reason, now=now, late_after=self._late_after
            )
            if not transition.changed:
                continue
            await self._repo.update(uow, transition)
            self._emit(uow, transition)
            transitions.append(transition)

        def committed() -> None:
            for transition in transitions:
                self._metrics.transition_committed(transition)

        if transitions:
            uow.after_commit(committed)
        return transitions

    # -- the scheduler's side ---------------------------------------------------------------

    async def fire_due(self, *, limit: int) -> tuple[int, int]:
        """Fire the clocks due now (at most ``limit``); returns (clocks fired, clocks looked at).

        A clock that cannot be fired (store error, corrupt document) is logged and skipped, so it
        never holds back the others; it is retried on the next pass.
        """
        clock_ids = await self._repo.due(self._now(), limit)
        fired = 0
        for clock_id in clock_ids:
            try:
                if await self.fire(clock_id):
                    fired += 1
            except Exception:
                # Logged in full once per process; the retries of every pass only at debug level.
                first = clock_id not in self._failing
                if len(self._failing) >= _MAX_REMEMBERED_FAILURES:
                    self._failing.clear()
                self._failing.add(clock_id)
                log.log(
                    logging.ERROR if first else logging.DEBUG,
                    "firing a clock failed; retrying on the next passes",
                    exc_info=True,
                    extra={"clock_id": clock_id},
                )
            else:
                self._failing.discard(clock_id)
        return fired, len(clock_ids)

    async def fire(self, clock_id: str) -> bool:
        """Fire what is due on one clock; True if it emitted something."""
        try:
            async with self._serial, self._store.transaction() as uow:
                clock = await self._repo.get(uow, clock_id)
                if clock is None:
                    return False
                transition = clock.fire(self._now(), late_after=self._late_after)
                if not transition.changed:
                    return False
                await self._repo.update(uow, transition)
                self._emit(uow, transition)
        except ConcurrentClockChangeError:
            # Another pod, or a stop, changed the clock first; whatever is still due is seen
            # on the next pass.
            return False
        self._metrics.transition_committed(transition)
        return True

    async def refresh_counts(self) -> None:
        self._metrics.set_counts(await self._repo.counts())

    # -- outgoing events ------------------------------------------------------------------

    def _emit(self, uow: UnitOfWork, transition: Transition) -> None:
        clock = transition.after
        for payload in sla_events(clock, transition.signals):
            uow.emit(
                payload,
                topic=Topic.SLA_EVENTS,
                key=clock.work_order_id,
                tenant=clock.tenant,
                correlationid=clock.correlation_id,
            )


def sla_events(clock: MilestoneClock, signals: Sequence[ClockSignal]) -> list[EventPayload]:
    """The wire events of a clock's signals."""
    common = SlaClockFacts(
        work_order_id=clock.work_order_id,
        clock_id=clock.clock_id,
        milestone=clock.milestone,
        started_at=clock.started_at,
        warn_at=clock.warn_at,
        due_at=clock.due_at,
    ).model_dump()
    events: list[EventPayload] = []
    for signal in signals:
        if signal.kind is SignalKind.WARNING:
            events.append(SlaWarning(**common, fired_at=signal.fired_at, late=signal.late))
        elif signal.kind is SignalKind.BREACH:
            events.append(SlaBreached(**common, fired_at=signal.fired_at, late=signal.late))
        elif signal.kind is SignalKind.STOPPED:
            # A stopped signal carries its stop and reason.
            assert signal.stopped_at is not None  # noqa: S101
            assert signal.reason is not None  # noqa: S101
            events.append(SlaStopped(**common, stopped_at=signal.stopped_at, reason=signal.reason))
        else:
            assert signal.stopped_at is not None  # noqa: S101 - a met signal carries its stop
            events.append(SlaMet(**common, stopped_at=signal.stopped_at))
    return events
