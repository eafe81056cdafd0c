"""The Kafka handler: hands each domain event to the use case for its type.

Event types the service does not notify about are skipped (the offset is committed).
"""

from __future__ import annotations

from fixloop_notifications.app.intake import WorkOrderNotifications
from fixloop_shared.bus import EventHandler
from fixloop_shared.contracts.events import EventPayload, WorkOrderReceived
from fixloop_shared.envelope import Event


def make_event_handler(notifications: WorkOrderNotifications) -> EventHandler:
    async def handle(event: Event[EventPayload]) -> None:
        payload = event.payload
        if isinstance(payload, WorkOrderReceived):
            await notifications.work_order_received(event.envelope, payload)

    return handle
