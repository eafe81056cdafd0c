"""The Kafka side of the parts service: which consumed events lead to which use case."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from fixloop_parts.app import PartsReservations
from fixloop_shared.contracts import WorkOrderReceived
from fixloop_shared.envelope import Event
from fixloop_shared.kernel import EventConsumer, UnitOfWork
from fixloop_shared.topics import Topic


def parts_consumers(
    reservations: PartsReservations, *, metrics: CollectorRegistry | None = None
) -> list[EventConsumer]:
    """Reserve parts for each received work order; every other event type is skipped."""
    decisions = Counter(
        "fixloop_parts_reservation_decisions",
        "Work orders whose required parts were reserved or backordered",
        ["outcome"],
        registry=metrics,
    )
    units = Counter(
        "fixloop_parts_units",
        "Part units reserved for work orders or found missing (backordered)",
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

    return [
        EventConsumer(
            name="reservations",
            topics=[Topic.WORKORDERS_EVENTS],
            handlers={WorkOrderReceived: on_received},
            preload=reservations.preload,
            description=(
                "Reserves the required parts of each received work order "
                "(fixloop.parts.reserved.v1) or backorders what is missing "
                "(fixloop.parts.backordered.v1)."
            ),
        )
    ]
