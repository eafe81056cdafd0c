"""Kafka entry point of contractors' performance: offer and job steps in, scorecards and quality
alerts out (outbox).

Its own consumer (group ``contractors.performance``, claims scoped the same way), apart from
dispatch: it reads the work orders' steps, the service's own announcements of offers declined
and run out, and the requesters' survey answers (``fixloop.feedback.submitted.v1``, published by
notifications), and never holds dispatch up.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from fixloop_contractors.app.performance import (
    PerformanceOutcome,
    PerformanceResult,
    PerformanceTracker,
)
from fixloop_shared.contracts import (
    AssignmentDeclined,
    AssignmentExpired,
    EventPayload,
    FeedbackSubmitted,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderOnSite,
    WorkOrderReceived,
    WorkOrderReopened,
    WorkOrderScheduled,
    WorkOrderWorkCompleted,
)
from fixloop_shared.envelope import Event, EventEnvelope
from fixloop_shared.kernel import EventConsumer, Handler, UnitOfWork
from fixloop_shared.topics import Topic

log = logging.getLogger(__name__)

PERFORMANCE = "performance"

Step = Callable[[Event[Any], UnitOfWork], Awaitable[PerformanceResult]]


def performance_consumer(
    tracker: PerformanceTracker, *, service: str, metrics: CollectorRegistry
) -> EventConsumer:
    """The consumer that keeps contractors' scorecards and raises quality alerts."""
    alerts = Counter(
        "fixloop_contractors_quality_alerts",
        "Quality alerts raised, by kind",
        ["kind"],
        registry=metrics,
    )
    scorecards = Counter(
        "fixloop_contractors_scorecard_updates",
        "Contractors' scorecards that changed",
        registry=metrics,
    )

    def recording(step: Step) -> Handler:
        async def on_step(event: Event[Any], uow: UnitOfWork) -> None:
            result = await step(event, uow)
            if result.outcome is PerformanceOutcome.UNCHANGED:
                return
            for alert in result.alerts:
                alerts.labels(alert.kind.value).inc()
                log.warning(
                    "quality alert: %s",
                    alert.summary,
                    extra={
                        "alert_id": alert.alert_id,
                        "kind": alert.kind.value,
                        "work_order_id": alert.work_order_id,
                        "contractor_id": alert.contractor_id,
                    },
                )
            scorecards.inc(len(result.scorecards))

        return on_step

    scope = f"{service}.{PERFORMANCE}"

    def claims(_: EventEnvelope) -> str:
        # Apart from dispatch's claims: both consumers read the work orders' events.
        return scope

    handlers: dict[type[EventPayload], Handler] = {
        WorkOrderReceived: recording(tracker.received),
        WorkOrderAssigned: recording(tracker.assigned),
        WorkOrderScheduled: recording(tracker.scheduled),
        WorkOrderOnSite: recording(tracker.arrived),
        WorkOrderWorkCompleted: recording(tracker.completed),
        WorkOrderReopened: recording(tracker.reopened),
        WorkOrderCancelled: recording(tracker.cancelled),
        FeedbackSubmitted: recording(tracker.feedback),
        AssignmentDeclined: recording(tracker.offer_ended),
        AssignmentExpired: recording(tracker.offer_ended),
    }
    return EventConsumer(
        name=PERFORMANCE,
        topics=[Topic.WORKORDERS_EVENTS, Topic.CONTRACTORS_EVENTS, Topic.NOTIFICATIONS_EVENTS],
        handlers=handlers,
        claim_scope=claims,
        preload=tracker.preload,
        description=(
            "Keeps each contractor's scorecard from its offers and jobs (acceptance, time to "
            "accept, on-time arrival, completion within target, first-time fix, customer "
            "rating; fixloop.contractor.scorecard_updated.v1), which dispatch ranks with, and "
            "raises quality alerts for the operators (work done far faster than its standard "
            "time, a repeat repair on the same equipment; fixloop.quality.alert_raised.v1)."
        ),
    )


__all__ = ["PERFORMANCE", "performance_consumer"]
