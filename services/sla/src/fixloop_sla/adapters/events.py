"""The Kafka side: which consumed events start and stop clocks."""

from __future__ import annotations

from fixloop_shared.bus import EventHandler
from fixloop_shared.contracts.events import AssignmentAccepted, EventPayload, WorkOrderReceived
from fixloop_shared.envelope import Event, EventEnvelope
from fixloop_shared.errors import UnauthorizedSource
from fixloop_shared.topics import Service
from fixloop_sla.app.clocks import SlaClocks


def _require_source(envelope: EventEnvelope, owner: Service) -> None:
    """Only the service that owns an event type may emit it (its CloudEvents ``source``)."""
    if envelope.source != owner.value:
        msg = f"{envelope.type} must come from {owner.value!r}, not {envelope.source!r}"
        raise UnauthorizedSource(msg)


def make_handler(clocks: SlaClocks) -> EventHandler:
    """Dispatch by payload type; every other event on the subscribed topics is skipped."""

    async def handle(event: Event[EventPayload]) -> None:
        payload = event.payload
        if isinstance(payload, WorkOrderReceived):
            _require_source(event.envelope, Service.ORDERS)
            await clocks.start_dispatch_clock(event.envelope, payload)
        elif isinstance(payload, AssignmentAccepted):
            _require_source(event.envelope, Service.CONTRACTORS)
            await clocks.stop_dispatch_clock(event.envelope, payload)

    return handle
