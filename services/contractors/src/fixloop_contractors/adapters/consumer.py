"""Kafka entry point: work-order events in, dispatch decisions out (through the outbox)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter

from fixloop_contractors.app.dispatch import WorkOrderDispatcher
from fixloop_shared.bus import Bus, subscribe
from fixloop_shared.contracts.events import EVENT_TYPES, EventPayload, WorkOrderReceived
from fixloop_shared.envelope import Event
from fixloop_shared.topics import Topic

log = logging.getLogger(__name__)


def register_work_order_consumer(
    bus: Bus, dispatcher: WorkOrderDispatcher, *, metrics: CollectorRegistry
) -> None:
    """Consume ``fixloop.workorder.received.v1`` from the work-order events topic.

    Every other event type on that topic is skipped (and committed); types no contract knows are
    dead-lettered by the shared consumer, as are events whose payload names another tenant than
    their envelope.
    """
    decisions = Counter(
        "fixloop_contractors_dispatch_decisions",
        "Dispatch decisions on received work orders, by outcome",
        ["outcome"],
        registry=metrics,
    )

    async def on_work_order_event(event: Event[EventPayload]) -> None:
        order = event.payload
        if not isinstance(order, WorkOrderReceived):
            return
        result = await dispatcher.work_order_received(event.envelope, order)
        decisions.labels(result.outcome.value).inc()
        log.info(
            "work order dispatch: %s",
            result.outcome.value,
            extra={
                "work_order_id": order.work_order_id,
                "outcome": result.outcome.value,
                "contractor_id": result.contractor_id,
                "offer_id": result.offer_id,
                "reason": result.reason,
            },
        )

    subscribe(
        bus,
        [Topic.WORKORDERS_EVENTS],
        on_work_order_event,
        registry=EVENT_TYPES,
        title="contractors: received work orders",
        description=(
            "Offers each received work order to one eligible contractor "
            "(fixloop.assignment.offered.v1) or reports why nobody can take it "
            "(fixloop.assignment.unfilled.v1)."
        ),
    )


__all__ = ["register_work_order_consumer"]
