"""Wire contracts: CloudEvents attributes, one pydantic model per event type, and their registry."""

from fixloop_shared.contracts.events import (
    EVENT_TYPES,
    INBOUND_EVENT_TYPES,
    AssignmentAccepted,
    AssignmentOffered,
    AssignmentUnfilled,
    EventPayload,
    NotificationFailed,
    NotificationSent,
    PartsBackordered,
    PartsReserved,
    SlaBreached,
    SlaMet,
    SlaWarning,
    WorkOrderReceived,
    WorkOrderSubmitted,
    payload_model,
)

__all__ = [
    "EVENT_TYPES",
    "INBOUND_EVENT_TYPES",
    "AssignmentAccepted",
    "AssignmentOffered",
    "AssignmentUnfilled",
    "EventPayload",
    "NotificationFailed",
    "NotificationSent",
    "PartsBackordered",
    "PartsReserved",
    "SlaBreached",
    "SlaMet",
    "SlaWarning",
    "WorkOrderReceived",
    "WorkOrderSubmitted",
    "payload_model",
]
