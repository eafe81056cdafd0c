"""The registry of event types: CloudEvents ``type`` → payload model, and which travel where."""

from __future__ import annotations

from fixloop_shared.contracts.base import EventPayload
from fixloop_shared.contracts.contractors import (
    AssignmentAccepted,
    AssignmentCredentialLapsed,
    AssignmentDeclined,
    AssignmentEscalated,
    AssignmentExpired,
    AssignmentOffered,
    AssignmentUnfilled,
    AssignmentWithdrawn,
    ContractorCredentialExpired,
    ContractorCredentialExpiring,
    ContractorScorecardUpdated,
    QualityAlertRaised,
)
from fixloop_shared.contracts.feedback import CompletionAnswered, FeedbackSubmitted
from fixloop_shared.contracts.lifecycle import LIFECYCLE_EVENTS, PLATFORM_COMMANDS
from fixloop_shared.contracts.notifications import NotificationFailed, NotificationSent
from fixloop_shared.contracts.parts import (
    PartsBackordered,
    PartsConsumed,
    PartsReleased,
    PartsReserved,
)
from fixloop_shared.contracts.sla import (
    SlaAtRisk,
    SlaBreached,
    SlaBreachRetracted,
    SlaEscalated,
    SlaMet,
    SlaRecomputed,
    SlaStopped,
    SlaWarning,
)
from fixloop_shared.contracts.workorders import WorkOrderReceived, WorkOrderSubmitted
from fixloop_shared.topics import Topic

_INBOUND: tuple[type[EventPayload], ...] = (WorkOrderSubmitted, *PLATFORM_COMMANDS)
INBOUND_EVENT_TYPES: dict[str, type[EventPayload]] = {model.event_type: model for model in _INBOUND}

_ALL: tuple[type[EventPayload], ...] = (
    WorkOrderSubmitted,
    *PLATFORM_COMMANDS,
    WorkOrderReceived,
    *LIFECYCLE_EVENTS,
    FeedbackSubmitted,
    CompletionAnswered,
    AssignmentOffered,
    AssignmentUnfilled,
    AssignmentAccepted,
    AssignmentDeclined,
    AssignmentExpired,
    AssignmentWithdrawn,
    AssignmentEscalated,
    AssignmentCredentialLapsed,
    ContractorCredentialExpiring,
    ContractorCredentialExpired,
    ContractorScorecardUpdated,
    QualityAlertRaised,
    PartsReserved,
    PartsBackordered,
    PartsReleased,
    PartsConsumed,
    SlaWarning,
    SlaBreached,
    SlaMet,
    SlaStopped,
    SlaEscalated,
    SlaRecomputed,
    SlaBreachRetracted,
    SlaAtRisk,
    NotificationSent,
    NotificationFailed,
)
EVENT_TYPES: dict[str, type[EventPayload]] = {model.event_type: model for model in _ALL}

EVENTS_ON_TOPIC: dict[Topic, tuple[type[EventPayload], ...]] = {
    Topic.WORKORDERS_INBOUND: (WorkOrderSubmitted, *PLATFORM_COMMANDS),
    Topic.LOGISTICS_INBOUND: (),
    Topic.WORKORDERS_EVENTS: (WorkOrderReceived, *LIFECYCLE_EVENTS),
    Topic.CONTRACTORS_EVENTS: (
        AssignmentOffered,
        AssignmentUnfilled,
        AssignmentAccepted,
        AssignmentDeclined,
        AssignmentExpired,
        AssignmentWithdrawn,
        AssignmentEscalated,
        AssignmentCredentialLapsed,
        ContractorCredentialExpiring,
        ContractorCredentialExpired,
        ContractorScorecardUpdated,
        QualityAlertRaised,
    ),
    Topic.PARTS_EVENTS: (PartsReserved, PartsBackordered, PartsReleased, PartsConsumed),
    Topic.SLA_EVENTS: (
        SlaWarning,
        SlaBreached,
        SlaEscalated,
        SlaMet,
        SlaStopped,
        SlaRecomputed,
        SlaBreachRetracted,
        SlaAtRisk,
    ),
    Topic.NOTIFICATIONS_EVENTS: (
        NotificationSent,
        NotificationFailed,
        FeedbackSubmitted,
        CompletionAnswered,
    ),
}
"""The event types each topic carries (an events topic: those of its owning service). No feed
is defined yet on ``fixloop.logistics.inbound.v1``. The requester's answers through signed links
(``fixloop.feedback.*``) are published by notifications, keyed by the work order id."""


def payload_model(event_type: str) -> type[EventPayload] | None:
    """The payload model registered for a CloudEvents ``type``, or None if unknown."""
    return EVENT_TYPES.get(event_type)


__all__ = [
    "EVENTS_ON_TOPIC",
    "EVENT_TYPES",
    "INBOUND_EVENT_TYPES",
    "payload_model",
]
