"""The Kafka side of the parts service: which consumed events lead to which use case."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from fixloop_parts.app import PartsReservations
from fixloop_shared.bus import EventHandler
from fixloop_shared.contracts.events import EventPayload, WorkOrderReceived
from fixloop_shared.envelope import Event


def work_order_events_handler(
    reservations: PartsReservations, *, metrics: CollectorRegistry | None = None
) -> EventHandler:
    """Handle ``workorder.received`` events; every other event type is skipped."""
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

    async def handle(event: Event[EventPayload]) -> None:
        payload = event.payload
        if not isinstance(payload, WorkOrderReceived):
            return
        outcome = await reservations.work_order_received(Event(event.envelope, payload))
        if outcome is None:
            return
        decisions.labels("reserved" if outcome.complete else "backordered").inc()
        units.labels("reserved").inc(outcome.plan.units_reserved)
        units.labels("missing").inc(outcome.plan.units_missing)

    return handle
