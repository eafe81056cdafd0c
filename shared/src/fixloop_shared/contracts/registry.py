"""The registry of event types: CloudEvents ``type`` → payload model, and which travel where."""

from __future__ import annotations

from fixloop_shared.contracts.base import EventPayload
from fixloop_shared.contracts.contractors import (
    AssignmentAccepted,
    AssignmentOffered,
    AssignmentUnfilled,
)
from fixloop_shared.contracts.notifications import NotificationFailed, NotificationSent
from fixloop_shared.contracts.parts import PartsBackordered, PartsReserved
from fixloop_shared.contracts.sla import SlaBreached, SlaMet, SlaWarning
from fixloop_shared.contracts.workorders import WorkOrderReceived, WorkOrderSubmitted
from fixloop_shared.topics import Topic

INBOUND_EVENT_TYPES: dict[str, type[EventPayload]] = {
    WorkOrderSubmitted.event_type: WorkOrderSubmitted,
}

EVENT_TYPES: dict[str, type[EventPayload]] = {
    model.event_type: model
    for model in (
        WorkOrderSubmitted,
        WorkOrderReceived,
        AssignmentOffered,
        AssignmentUnfilled,
        AssignmentAccepted,
        PartsReserved,
        PartsBackordered,
        SlaWarning,
        SlaBreached,
        SlaMet,
        NotificationSent,
        NotificationFailed,
    )
}

EVENTS_ON_TOPIC: dict[Topic, tuple[type[EventPayload], ...]] = {
    Topic.WORKORDERS_INBOUND: (WorkOrderSubmitted,),
    Topic.LOGISTICS_INBOUND: (),
    Topic.WORKORDERS_EVENTS: (WorkOrderReceived,),
    Topic.CONTRACTORS_EVENTS: (AssignmentOffered, AssignmentUnfilled, AssignmentAccepted),
    Topic.PARTS_EVENTS: (PartsReserved, PartsBackordered),
    Topic.SLA_EVENTS: (SlaWarning, SlaBreached, SlaMet),
    Topic.NOTIFICATIONS_EVENTS: (NotificationSent, NotificationFailed),
}
"""The event types each topic carries (an events topic: those of its owning service). No feed
is defined yet on ``fixloop.logistics.inbound.v1``."""


def payload_model(event_type: str) -> type[EventPayload] | None:
    """The payload model registered for a CloudEvents ``type``, or None if unknown."""
    return EVENT_TYPES.get(event_type)


__all__ = [
    "EVENTS_ON_TOPIC",
    "EVENT_TYPES",
    "INBOUND_EVENT_TYPES",
    "payload_model",
]
