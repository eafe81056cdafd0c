"""Use case: reserve the parts a newly received work order needs.

One unit of work claims the event, plans the reservation from the current stock, moves each
allocated quantity from available to reserved with a conditional update (only if it is still
available), records the decision and emits ``PartsReserved`` or ``PartsBackordered``. If the
stock changed between planning and reserving (another process reserved or counted it), the
transaction is rolled back and the reservation is planned again from fresh stock, a bounded
number of times. Stock therefore never goes negative, and a redelivered event has no effect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fixloop_parts.app.ports import (
    ReservationDecision,
    ReservationLog,
    StockRepository,
)
from fixloop_parts.domain import (
    DEFAULT_MAX_SOURCES,
    ReservationPlan,
    plan_reservation,
    split_quantity,
    total_demand,
)
from fixloop_shared.contracts import (
    PartLine,
    PartReservation,
    PartsBackordered,
    PartsReserved,
    WorkOrderReceived,
)
from fixloop_shared.envelope import Event
from fixloop_shared.errors import TransientError
from fixloop_shared.kernel import UnitOfWork, UnitsOfWork, apply_event
from fixloop_shared.topics import Topic

log = logging.getLogger(__name__)

WIRE_QUANTITY_LIMIT = 10_000
"""The largest quantity one line of a parts event may carry (``contracts.types.Quantity``)."""

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class StockContention(TransientError):  # noqa: N818 - the situation, not a program failure
    """The stock kept changing under every re-planning; the kernel retries the event later."""


@dataclass(frozen=True)
class ReservationPolicy:
    max_sources: int = DEFAULT_MAX_SOURCES
    attempts: int = 10


@dataclass(frozen=True)
class ReservationOutcome:
    work_order_id: str
    plan: ReservationPlan
    event: PartsReserved | PartsBackordered
    attempts: int

    @property
    def complete(self) -> bool:
        return self.plan.complete


def reservation_lines(plan: ReservationPlan) -> list[PartReservation]:
    return [
        PartReservation(
            part_number=allocation.part_number,
            warehouse_id=allocation.warehouse_id,
            quantity=piece,
        )
        for allocation in plan.allocations
        for piece in split_quantity(allocation.quantity, WIRE_QUANTITY_LIMIT)
    ]


def missing_lines(plan: ReservationPlan) -> list[PartLine]:
    return [
        PartLine(part_number=shortfall.part_number, quantity=piece)
        for shortfall in plan.shortfalls
        for piece in split_quantity(shortfall.quantity, WIRE_QUANTITY_LIMIT)
    ]


def decision_event(
    work_order_id: str, plan: ReservationPlan, at: datetime
) -> PartsReserved | PartsBackordered:
    if plan.complete:
        return PartsReserved(
            work_order_id=work_order_id, reservations=reservation_lines(plan), reserved_at=at
        )
    return PartsBackordered(
        work_order_id=work_order_id,
        reservations=reservation_lines(plan),
        missing=missing_lines(plan),
        decided_at=at,
    )


class PartsReservations:
    """Reserves parts for work orders; one instance per process."""

    def __init__(
        self,
        store: UnitsOfWork,
        stock: StockRepository,
        reservations: ReservationLog,
        *,
        policy: ReservationPolicy | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._stock = stock
        self._reservations = reservations
        self._policy = policy or ReservationPolicy()
        self._clock = clock

    async def work_order_received(
        self, event: Event[WorkOrderReceived]
    ) -> ReservationOutcome | None:
        """Apply one received work order now, in its own unit of work; the service's consumer
        goes through the kernel (:meth:`reserve`). Stock that changed under the plan is planned
        again, up to the policy's number of attempts."""
        tries = 0

        async def counted(
            event: Event[WorkOrderReceived], uow: UnitOfWork
        ) -> ReservationOutcome | None:
            nonlocal tries
            tries += 1
            return await self.reserve(event, uow, attempt=tries)

        return await apply_event(self._store, event, counted, attempts=self._policy.attempts)

    async def preload(self, events: Sequence[Event[WorkOrderReceived]], uow: UnitOfWork) -> None:
        """Read what a batch of received work orders needs (their decisions so far, the stock of
        their parts) in a few reads, for :meth:`reserve` to use in the same unit of work."""
        orders = [e.payload for e in events if e.payload.required_parts]
        if not orders:
            return
        await self._reservations.load(uow, [order.work_order_id for order in orders])
        await self._stock.load(
            uow, [line.part_number for order in orders for line in order.required_parts]
        )

    async def reserve(
        self, event: Event[WorkOrderReceived], uow: UnitOfWork, *, attempt: int = 1
    ) -> ReservationOutcome | None:
        """Reserve the order's required parts; None if it needs none or was already decided.

        Stock is taken by conditional updates on a plan made from the stock as read. If another
        reservation took it meanwhile, :class:`StockContention` (transient) rolls the unit of
        work back and the kernel applies the event again, on fresh stock.
        """
        order = event.payload
        if not order.required_parts:
            return None
        demand = total_demand((line.part_number, line.quantity) for line in order.required_parts)
        if await self._reservations.decided(uow, order.work_order_id):
            return None
        sources = await self._stock.sources(uow, [part.part_number for part in demand])
        plan = plan_reservation(
            demand,
            sources,
            site_country=order.site.address.country,
            max_sources=self._policy.max_sources,
        )
        for allocation in plan.allocations:
            if not await self._stock.take(uow, allocation):
                msg = (
                    f"{allocation.quantity} x {allocation.part_number} no longer available "
                    f"in {allocation.warehouse_id}; planning again"
                )
                raise StockContention(msg)
        now = self._clock()
        await self._reservations.record(
            uow,
            ReservationDecision(
                work_order_id=order.work_order_id,
                tenant=order.tenant,
                site_country=order.site.address.country,
                plan=plan,
                decided_at=now,
                event_id=event.envelope.id,
            ),
        )
        outgoing = decision_event(order.work_order_id, plan, now)
        uow.emit(
            outgoing,
            topic=Topic.PARTS_EVENTS,
            key=order.work_order_id,
            tenant=order.tenant,
            correlationid=event.envelope.correlationid,
        )
        log.info(
            "parts reserved" if plan.complete else "parts backordered",
            extra={
                "work_order_id": order.work_order_id,
                "units_reserved": plan.units_reserved,
                "units_missing": plan.units_missing,
            },
        )
        return ReservationOutcome(order.work_order_id, plan, outgoing, attempt)
