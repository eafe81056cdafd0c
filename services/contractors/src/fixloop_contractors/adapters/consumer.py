"""Kafka entry point: work-order events in, dispatch decisions and offer changes out (outbox)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from fixloop_contractors.app.assignments import AssignmentTracker, LifecycleOutcome, LifecycleResult
from fixloop_contractors.app.dispatch import WorkOrderDispatcher
from fixloop_shared.contracts import (
    EventPayload,
    LifecycleFacts,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderOfferDeclined,
    WorkOrderReceived,
    WorkOrderReopened,
    WorkOrderWorkCompleted,
)
from fixloop_shared.envelope import Event
from fixloop_shared.kernel import EventConsumer, Handler, UnitOfWork
from fixloop_shared.topics import Topic

log = logging.getLogger(__name__)

LifecycleStep = Callable[[Event[Any], UnitOfWork], Awaitable[LifecycleResult]]


def contractors_consumers(
    dispatcher: WorkOrderDispatcher,
    assignments: AssignmentTracker,
    *,
    metrics: CollectorRegistry,
) -> list[EventConsumer]:
    """The contractors service's consumer: received work orders become offers, and the orders'
    later steps (assigned, offer declined, cancelled, work completed, reopened) settle them.

    Every other event type on the work-order topic is skipped (and committed). It is one consumer
    (group ``contractors.dispatch``), so each order's events are applied in their order. An order
    declined or run out goes on to its next dispatch round in the same unit of work.
    """
    decisions = Counter(
        "fixloop_contractors_dispatch_decisions",
        "Dispatch decisions on received work orders, by outcome",
        ["outcome"],
        registry=metrics,
    )
    lifecycle = Counter(
        "fixloop_contractors_lifecycle_steps",
        "Work-order lifecycle steps applied to offers and jobs, by event type and outcome",
        ["event_type", "outcome"],
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

    def following(step: LifecycleStep) -> Handler:
        async def on_step(event: Event[Any], uow: UnitOfWork) -> None:
            facts: LifecycleFacts = event.payload
            result = await step(event, uow)
            lifecycle.labels(event.envelope.type, result.outcome.value).inc()
            details = {
                "work_order_id": facts.work_order_id,
                "event_type": event.envelope.type,
                "outcome": result.outcome.value,
                "offer_id": getattr(facts, "offer_id", None),
                "contractor_id": facts.contractor_id,
            }
            if result.outcome is LifecycleOutcome.UNKNOWN:
                log.info("work order or offer not known here; nothing recorded", extra=details)
                return
            log.info(
                "work order lifecycle step: %s",
                result.outcome.value,
                extra={
                    **details,
                    "changed": [c.after.offer_id for c in result.changes],
                    "withdrawn": list(result.withdrawn),
                },
            )

        return on_step

    handlers: dict[type[EventPayload], Handler] = {
        WorkOrderReceived: on_received,
        WorkOrderAssigned: following(assignments.assigned),
        WorkOrderOfferDeclined: following(assignments.offer_declined),
        WorkOrderCancelled: following(assignments.cancelled),
        WorkOrderWorkCompleted: following(assignments.work_completed),
        WorkOrderReopened: following(assignments.reopened),
    }
    return [
        EventConsumer(
            name="dispatch",
            topics=[Topic.WORKORDERS_EVENTS],
            handlers=handlers,
            description=(
                "Offers each received work order to the best eligible contractor (an emergency "
                "to several at once; fixloop.assignment.offered.v1), to the next after a "
                "declined offer (fixloop.assignment.declined.v1), or reports why nobody can "
                "take it (fixloop.assignment.unfilled.v1); follows the order's assignment, "
                "cancellation, completion and reopening, withdrawing offers that no longer "
                "stand (fixloop.assignment.withdrawn.v1)."
            ),
        )
    ]


__all__ = ["contractors_consumers"]
