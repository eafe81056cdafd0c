"""The Kafka side of notifications: which consumed events are turned into notices.

Every lifecycle event of an order (for the requester, the contractor and the tenant's webhook
endpoints), the contractors' offers, withdrawals, unfilled orders, credential warnings and
quality alerts, and the SLA engine's predictions, breaches and escalations. Event types the
service does not notify about are skipped (the offset is committed).
"""

from __future__ import annotations

from typing import Any

from fixloop_notifications.app.intake import WorkOrderNotifications
from fixloop_shared.contracts import (
    LIFECYCLE_EVENTS,
    AssignmentOffered,
    AssignmentUnfilled,
    AssignmentWithdrawn,
    ContractorCredentialExpiring,
    EventPayload,
    QualityAlertRaised,
    SlaAtRisk,
    SlaBreached,
    SlaEscalated,
    WorkOrderReceived,
)
from fixloop_shared.kernel import EventConsumer
from fixloop_shared.topics import Topic

CONSUMED_TOPICS: tuple[Topic, ...] = (
    Topic.WORKORDERS_EVENTS,
    Topic.CONTRACTORS_EVENTS,
    Topic.SLA_EVENTS,
)

NOTIFIED_EVENTS: tuple[type[EventPayload], ...] = (
    WorkOrderReceived,
    *LIFECYCLE_EVENTS,
    AssignmentOffered,
    AssignmentWithdrawn,
    AssignmentUnfilled,
    ContractorCredentialExpiring,
    QualityAlertRaised,
    SlaAtRisk,
    SlaBreached,
    SlaEscalated,
)
"""Every event type notifications reads (each one handled the same way: its notices, its
webhook calls)."""


def notifications_consumers(notifications: WorkOrderNotifications) -> list[EventConsumer]:
    handlers: dict[type[EventPayload], Any] = dict.fromkeys(NOTIFIED_EVENTS, notifications.on_event)
    return [
        EventConsumer(
            name="notices",
            topics=list(CONSUMED_TOPICS),
            handlers=handlers,
            description="Domain events that people and tenants' systems are told about",
        )
    ]


__all__ = ["CONSUMED_TOPICS", "NOTIFIED_EVENTS", "notifications_consumers"]
