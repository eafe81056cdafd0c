"""Kafka consumers of the orders service.

- ``fixloop.workorders.inbound.v1``: work orders submitted by external platforms, in CloudEvents
  binary or structured mode, validated strictly against the inbound contract.
- the events topics of contractors, parts, SLA and notifications: what they report about a work
  order goes into its timeline.

Use-case errors that can never succeed on a retry become dead letters with their reason:
``unauthorized`` (source platform not bound to the tenant) and ``unknown-work-order``.
"""

from __future__ import annotations

from fixloop_orders.app.intake import SourceNotBoundError, WorkOrderIntake
from fixloop_orders.app.timeline import TimelineRecorder, WorkOrderNotFoundError
from fixloop_shared.bus import Bus, subscribe
from fixloop_shared.contracts.events import (
    EVENT_TYPES,
    INBOUND_EVENT_TYPES,
    EventPayload,
    WorkOrderSubmitted,
)
from fixloop_shared.envelope import Event
from fixloop_shared.errors import PoisonMessage, UnauthorizedSource, UnknownEventType
from fixloop_shared.topics import Topic

TIMELINE_TOPICS: tuple[Topic, ...] = (
    Topic.CONTRACTORS_EVENTS,
    Topic.PARTS_EVENTS,
    Topic.SLA_EVENTS,
    Topic.NOTIFICATIONS_EVENTS,
)
"""The topics whose events about work orders are recorded in their timelines."""

CONSUMED_TOPICS: tuple[Topic, ...] = (Topic.WORKORDERS_INBOUND, *TIMELINE_TOPICS)


class UnknownWorkOrder(PoisonMessage):
    """An event about a work order that the event's tenant does not have."""

    reason = "unknown-work-order"


def subscribe_orders(bus: Bus, intake: WorkOrderIntake, recorder: TimelineRecorder) -> None:
    """Register the orders service's consumers on ``bus`` (before the broker starts)."""

    async def on_submitted(event: Event[EventPayload]) -> None:
        payload = event.payload
        if not isinstance(payload, WorkOrderSubmitted):
            msg = f"{event.envelope.type} is not accepted on {Topic.WORKORDERS_INBOUND}"
            raise UnknownEventType(msg)
        try:
            await intake.submit(Event(event.envelope, payload))
        except SourceNotBoundError as exc:
            raise UnauthorizedSource(str(exc)) from exc

    async def on_work_order_event(event: Event[EventPayload]) -> None:
        try:
            await recorder.record(event)
        except WorkOrderNotFoundError as exc:
            raise UnknownWorkOrder(str(exc)) from exc

    subscribe(
        bus,
        [Topic.WORKORDERS_INBOUND],
        on_submitted,
        registry=INBOUND_EVENT_TYPES,
        accept_structured=True,
        title="orders:intake",
        description=(
            "Work orders submitted by external platforms (CloudEvents binary or structured "
            "mode). The source platform must be bound to the event's tenant."
        ),
    )
    subscribe(
        bus,
        list(TIMELINE_TOPICS),
        on_work_order_event,
        registry=EVENT_TYPES,
        title="orders:timeline",
        description=(
            "Offers, parts reservations, SLA clocks and notifications about a work order, "
            "recorded in its timeline."
        ),
    )


__all__ = ["CONSUMED_TOPICS", "TIMELINE_TOPICS", "UnknownWorkOrder", "subscribe_orders"]
