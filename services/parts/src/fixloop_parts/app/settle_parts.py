"""Use case: end a work order's reservations when the order is cancelled or its work completed.

- ``WorkOrderCancelled``: every active reservation line of the order is released (its units are
  available again in its warehouse) and one ``PartsReleased`` is emitted; an order with nothing
  reserved emits nothing.
- ``WorkOrderWorkCompleted``: the reserved units the report says were used are consumed (out of
  reserved and on-hand stock for good), the rest of the lines released; units used beyond what
  was reserved are taken out of one warehouse's available stock if one has them all, else left
  alone (logged). One ``PartsConsumed`` is emitted, if anything was consumed or released.

Each reservation line is ended by a conditional update (only while it is still active) and its
stock by a conditional ``$inc`` (only if nothing goes negative), in the unit of work that claims
the event; the settlement is recorded once per work order. So a redelivered event, a cancellation
after completion or a completion after cancellation finds nothing active and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from fixloop_parts.app.ports import (
    OrderReservations,
    ReservationLog,
    SettlementRecord,
    StockRepository,
)
from fixloop_parts.app.reserve_parts import (
    WIRE_QUANTITY_LIMIT,
    Clock,
    StockContention,
    utc_now,
)
from fixloop_parts.domain import (
    Allocation,
    PartDemand,
    PartsSettlement,
    StockMovement,
    choose_unreserved_source,
    preferred_warehouses,
    release_all,
    settle_completion,
    split_quantity,
)
from fixloop_shared.contracts import (
    PartReservation,
    PartsConsumed,
    PartsReleased,
    WorkOrderCancelled,
    WorkOrderWorkCompleted,
)
from fixloop_shared.envelope import Event
from fixloop_shared.kernel import UnitOfWork, UnitsOfWork, apply_event
from fixloop_shared.topics import Topic

log = logging.getLogger(__name__)

CANCELLED_WITHOUT_REASON = "work order cancelled"
"""The reason a release carries when the cancellation gave none (``PartsReleased.reason`` is
required, ``WorkOrderCancelled.reason`` is not)."""

RELEASED = "released"
CONSUMED = "consumed"


class ReservedStockMissing(RuntimeError):  # noqa: N818 - the situation found
    """A reservation line names units its stock line does not hold as reserved: the records
    disagree (never by concurrency: the line's conditional update came first). Not retried
    for ever: the kernel dead-letters the event for an operator."""


@dataclass(frozen=True)
class SettlementOutcome:
    work_order_id: str
    settlement: PartsSettlement
    taken: tuple[Allocation, ...]
    ignored: tuple[PartDemand, ...]
    event: PartsReleased | PartsConsumed

    @property
    def units_taken(self) -> int:
        return sum(allocation.quantity for allocation in self.taken)

    @property
    def units_ignored(self) -> int:
        return sum(demand.quantity for demand in self.ignored)


def wire_lines(allocations: Sequence[Allocation]) -> list[PartReservation]:
    """Lines of a parts event, one per (part number, warehouse) in first-seen order, split where
    a quantity exceeds what one line may carry."""
    merged: dict[tuple[str, str], int] = {}
    for allocation in allocations:
        key = (allocation.part_number, allocation.warehouse_id)
        merged[key] = merged.get(key, 0) + allocation.quantity
    return [
        PartReservation(part_number=part, warehouse_id=warehouse, quantity=piece)
        for (part, warehouse), quantity in merged.items()
        for piece in split_quantity(quantity, WIRE_QUANTITY_LIMIT)
    ]


class PartsSettlements:
    """Releases and consumes work orders' reservations; one instance per process."""

    def __init__(
        self,
        store: UnitsOfWork,
        stock: StockRepository,
        reservations: ReservationLog,
        *,
        clock: Clock = utc_now,
        attempts: int = 10,
    ) -> None:
        self._store = store
        self._stock = stock
        self._reservations = reservations
        self._clock = clock
        self._attempts = attempts

    async def work_order_cancelled(
        self, event: Event[WorkOrderCancelled]
    ) -> SettlementOutcome | None:
        """Apply one cancellation now, in its own unit of work (the consumer goes through the
        kernel: :meth:`release`)."""
        return await apply_event(self._store, event, self.release, attempts=self._attempts)

    async def work_order_completed(
        self, event: Event[WorkOrderWorkCompleted]
    ) -> SettlementOutcome | None:
        """Apply one completion now, in its own unit of work (the consumer goes through the
        kernel: :meth:`consume`)."""
        return await apply_event(self._store, event, self.consume, attempts=self._attempts)

    async def preload(
        self,
        events: Sequence[Event[WorkOrderCancelled] | Event[WorkOrderWorkCompleted]],
        uow: UnitOfWork,
    ) -> None:
        """Read the reservation lines of a batch's cancelled and completed orders in one go."""
        ids = [event.payload.work_order_id for event in events]
        if ids:
            await self._reservations.load_reservations(uow, ids)

    async def _unsettled(
        self, event: Event[WorkOrderCancelled] | Event[WorkOrderWorkCompleted], uow: UnitOfWork
    ) -> OrderReservations | None:
        order = event.payload
        found = await self._reservations.reservations_of(
            uow, order.work_order_id, tenant=event.envelope.tenant
        )
        if found.settled:
            log.info(
                "the work order's parts were settled already; nothing to do",
                extra={"work_order_id": order.work_order_id, "event_type": event.envelope.type},
            )
            return None
        return found

    async def release(
        self, event: Event[WorkOrderCancelled], uow: UnitOfWork
    ) -> SettlementOutcome | None:
        """Release every active reservation line of the cancelled order; None if none."""
        order = event.payload
        found = await self._unsettled(event, uow)
        if found is None or not found.active:
            return None
        settlement = release_all(found.active)
        await self._settle_lines(uow, order.work_order_id, settlement, event.envelope.id)
        now = self._clock()
        reason = order.reason or CANCELLED_WITHOUT_REASON
        await self._reservations.record_settlement(
            uow,
            SettlementRecord(
                work_order_id=order.work_order_id,
                tenant=event.envelope.tenant,
                outcome=RELEASED,
                settlement=settlement,
                taken=(),
                ignored=(),
                reason=reason,
                settled_at=now,
                event_id=event.envelope.id,
            ),
        )
        outgoing = PartsReleased(
            work_order_id=order.work_order_id,
            released=wire_lines(settlement.released),
            reason=reason,
            released_at=now,
        )
        uow.emit(
            outgoing,
            topic=Topic.PARTS_EVENTS,
            key=order.work_order_id,
            tenant=event.envelope.tenant,
            correlationid=event.envelope.correlationid,
        )
        log.info(
            "reserved parts released",
            extra={
                "work_order_id": order.work_order_id,
                "units_released": settlement.units_released,
            },
        )
        return SettlementOutcome(order.work_order_id, settlement, (), (), outgoing)

    async def consume(
        self, event: Event[WorkOrderWorkCompleted], uow: UnitOfWork
    ) -> SettlementOutcome | None:
        """Consume the used parts, release the rest; None if nothing moved."""
        order = event.payload
        found = await self._unsettled(event, uow)
        if found is None:
            return None
        used = [(part.part_number, part.quantity) for part in order.completion.parts_used]
        settlement = settle_completion(found.active, used)
        await self._settle_lines(uow, order.work_order_id, settlement, event.envelope.id)
        taken, ignored = await self._take_unreserved(uow, found, settlement)
        if not settlement.lines and not taken:
            return None
        now = self._clock()
        await self._reservations.record_settlement(
            uow,
            SettlementRecord(
                work_order_id=order.work_order_id,
                tenant=event.envelope.tenant,
                outcome=CONSUMED,
                settlement=settlement,
                taken=taken,
                ignored=ignored,
                reason=None,
                settled_at=now,
                event_id=event.envelope.id,
            ),
        )
        outgoing = PartsConsumed(
            work_order_id=order.work_order_id,
            consumed=wire_lines([*settlement.consumed, *taken]),
            released=wire_lines(settlement.released),
            consumed_at=now,
        )
        uow.emit(
            outgoing,
            topic=Topic.PARTS_EVENTS,
            key=order.work_order_id,
            tenant=event.envelope.tenant,
            correlationid=event.envelope.correlationid,
        )
        log.info(
            "used parts consumed",
            extra={
                "work_order_id": order.work_order_id,
                "units_consumed": settlement.units_consumed,
                "units_released": settlement.units_released,
                "units_consumed_unreserved": sum(a.quantity for a in taken),
            },
        )
        return SettlementOutcome(order.work_order_id, settlement, taken, ignored, outgoing)

    async def _settle_lines(
        self, uow: UnitOfWork, work_order_id: str, settlement: PartsSettlement, event_id: str
    ) -> None:
        for line in settlement.lines:
            if not await self._reservations.settle(uow, work_order_id, line, event_id=event_id):
                # Someone settled it between our read and this write: read again, in a new unit.
                msg = (
                    f"the reservation of {line.reservation.part_number} in "
                    f"{line.reservation.warehouse_id} for {work_order_id} was settled meanwhile"
                )
                raise StockContention(msg)
            if not await self._stock.move(uow, line.movement):
                msg = (
                    f"{line.reservation.quantity} x {line.reservation.part_number} reserved in "
                    f"{line.reservation.warehouse_id} for {work_order_id}, but its stock line "
                    "does not hold them as reserved"
                )
                raise ReservedStockMissing(msg)

    async def _take_unreserved(
        self, uow: UnitOfWork, found: OrderReservations, settlement: PartsSettlement
    ) -> tuple[tuple[Allocation, ...], tuple[PartDemand, ...]]:
        """Take the units used without a reservation out of one warehouse's available stock
        each, where one has them all; the others are left alone (logged)."""
        if not settlement.unreserved:
            return (), ()
        sources = await self._stock.sources(
            uow, [demand.part_number for demand in settlement.unreserved]
        )
        taken: list[Allocation] = []
        ignored: list[PartDemand] = []
        for demand in settlement.unreserved:
            chosen = choose_unreserved_source(
                demand, sources, preferred=preferred_warehouses(found.active, demand.part_number)
            )
            if chosen is None:
                log.warning(
                    "used parts that were not reserved are not in stock; stock left as it is",
                    extra={
                        "work_order_id": found.work_order_id,
                        "part_number": demand.part_number,
                        "quantity": demand.quantity,
                    },
                )
                ignored.append(demand)
                continue
            movement = StockMovement.unreserved_use(
                chosen.warehouse_id, chosen.part_number, chosen.quantity
            )
            if not await self._stock.move(uow, movement):
                msg = (
                    f"{chosen.quantity} x {chosen.part_number} no longer available in "
                    f"{chosen.warehouse_id}; settling again"
                )
                raise StockContention(msg)
            taken.append(chosen)
        return tuple(taken), tuple(ignored)
