"""The Kafka side of the parts service: which consumed events lead to which use case."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from fixloop_parts.app import PartsReservations, PartsSettlements, SettlementOutcome
from fixloop_shared.contracts import WorkOrderCancelled, WorkOrderReceived, WorkOrderWorkCompleted
from fixloop_shared.envelope import Event
from fixloop_shared.kernel import EventConsumer, UnitOfWork
from fixloop_shared.topics import Topic


def parts_consumers(
    reservations: PartsReservations,
    settlements: PartsSettlements,
    *,
    metrics: CollectorRegistry | None = None,
) -> list[EventConsumer]:
    """Reserve parts for each received work order, release them when it is cancelled, consume
    the used ones when its work is completed; every other event type is skipped.

    One consumer for all three (group ``parts.reservations``): the work order events topic is
    read once, and each order's events are applied in their order.
    """
    decisions = Counter(
        "fixloop_parts_reservation_decisions",
        "Work orders whose required parts were reserved or backordered",
        ["outcome"],
        registry=metrics,
    )
    units = Counter(
        "fixloop_parts_units",
        "Part units reserved for work orders, found missing (backordered), released, consumed "
        "(reserved or not), or used without a reservation and not in stock (ignored)",
        ["outcome"],
        registry=metrics,
    )
    settled = Counter(
        "fixloop_parts_settlements",
        "Work orders whose reserved parts were released (cancelled) or consumed (completed)",
        ["outcome"],
        registry=metrics,
    )

    async def on_received(event: Event[WorkOrderReceived], uow: UnitOfWork) -> None:
        outcome = await reservations.reserve(event, uow)
        if outcome is None:
            return
        decisions.labels("reserved" if outcome.complete else "backordered").inc()
        units.labels("reserved").inc(outcome.plan.units_reserved)
        units.labels("missing").inc(outcome.plan.units_missing)

    def count(outcome: SettlementOutcome | None, kind: str) -> None:
        if outcome is None:
            return
        settled.labels(kind).inc()
        units.labels("released").inc(outcome.settlement.units_released)
        units.labels("consumed").inc(outcome.settlement.units_consumed + outcome.units_taken)
        units.labels("ignored").inc(outcome.units_ignored)

    async def on_cancelled(event: Event[WorkOrderCancelled], uow: UnitOfWork) -> None:
        count(await settlements.release(event, uow), "released")

    async def on_completed(event: Event[WorkOrderWorkCompleted], uow: UnitOfWork) -> None:
        count(await settlements.consume(event, uow), "consumed")

    async def preload(events: Sequence[Event[Any]], uow: UnitOfWork) -> None:
        received = [e for e in events if isinstance(e.payload, WorkOrderReceived)]
        settling = [
            e for e in events if isinstance(e.payload, WorkOrderCancelled | WorkOrderWorkCompleted)
        ]
        if received:
            await reservations.preload(received, uow)
        if settling:
            await settlements.preload(settling, uow)

    return [
        EventConsumer(
            name="reservations",
            topics=[Topic.WORKORDERS_EVENTS],
            handlers={
                WorkOrderReceived: on_received,
                WorkOrderCancelled: on_cancelled,
                WorkOrderWorkCompleted: on_completed,
            },
            preload=preload,
            description=(
                "Reserves the required parts of each received work order "
                "(fixloop.parts.reserved.v1) or backorders what is missing "
                "(fixloop.parts.backordered.v1); releases a cancelled order's reservations "
                "(fixloop.parts.released.v1); consumes the parts a completed order used and "
                "releases the rest (fixloop.parts.consumed.v1)."
            ),
        )
    ]
