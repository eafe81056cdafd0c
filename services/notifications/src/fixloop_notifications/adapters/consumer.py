"""The Kafka side of notifications: which consumed events are turned into notices.

Event types the service does not notify about are skipped (the offset is committed).
"""

from __future__ import annotations

from fixloop_notifications.app.intake import WorkOrderNotifications
from fixloop_shared.contracts import WorkOrderReceived
from fixloop_shared.kernel import EventConsumer
from fixloop_shared.topics import Topic

CONSUMED_TOPICS: tuple[Topic, ...] = (Topic.WORKORDERS_EVENTS,)


def notifications_consumers(notifications: WorkOrderNotifications) -> list[EventConsumer]:
    return [
        EventConsumer(
            name="notices",
            topics=list(CONSUMED_TOPICS),
            handlers={WorkOrderReceived: notifications.work_order_received},
            description="Domain events that people are told about",
        )
    ]


__all__ = ["CONSUMED_TOPICS", "notifications_consumers"]
