"""Kafka entry point: work-order events in, dispatch decisions out (through the outbox)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter

from fixloop_contractors.app.dispatch import WorkOrderDispatcher
from fixloop_shared.contracts import WorkOrderReceived
from fixloop_shared.envelope import Event
from fixloop_shared.kernel import EventConsumer, UnitOfWork
from fixloop_shared.topics import Topic

log = logging.getLogger(__name__)


def contractors_consumers(
    dispatcher: WorkOrderDispatcher, *, metrics: CollectorRegistry
) -> list[EventConsumer]:
    """The contractors service's consumer: received work orders become offers.

    Every other event type on the work-order topic is skipped (and committed).
    """
    decisions = Counter(
        "fixloop_contractors_dispatch_decisions",
        "Dispatch decisions on received work orders, by outcome",
        ["outcome"],
        registry=metrics,
    )

    async def on_received(event: Event[WorkOrderReceived], uow: UnitOfWork) -> None:
        order = event.payload
        result = await dispatcher.work_order_received(event, uow)
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

    return [
        EventConsumer(
            name="dispatch",
            topics=[Topic.WORKORDERS_EVENTS],
            handlers={WorkOrderReceived: on_received},
            description=(
                "Offers each received work order to one eligible contractor "
                "(fixloop.assignment.offered.v1) or reports why nobody can take it "
                "(fixloop.assignment.unfilled.v1)."
            ),
        )
    ]


__all__ = ["contractors_consumers"]
