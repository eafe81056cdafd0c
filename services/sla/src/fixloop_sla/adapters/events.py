"""The Kafka side: which consumed events start, stop and cancel clocks."""

from __future__ import annotations

from typing import Any

from fixloop_shared.contracts import (
    AssignmentAccepted,
    WorkOrderAssigned,
    WorkOrderCancelled,
    WorkOrderReceived,
)
from fixloop_shared.envelope import Event
from fixloop_shared.errors import UnauthorizedSource
from fixloop_shared.kernel import EventConsumer, UnitOfWork
from fixloop_shared.topics import Service, Topic
from fixloop_sla.app.clocks import SlaClocks

OWNERS: dict[type[object], Service] = {
    WorkOrderReceived: Service.ORDERS,
    WorkOrderAssigned: Service.ORDERS,
    WorkOrderCancelled: Service.ORDERS,
    AssignmentAccepted: Service.CONTRACTORS,
}
"""Only the service that owns an event type may emit it (its CloudEvents ``source``)."""


def require_owner(event: Event[Any]) -> None:
    owner = OWNERS.get(type(event.payload))
    if owner is not None and event.envelope.source != owner.value:
        msg = f"{event.envelope.type} must come from {owner.value!r}, not {event.envelope.source!r}"
        raise UnauthorizedSource(msg)


def sla_consumers(clocks: SlaClocks) -> list[EventConsumer]:
    async def on_received(event: Event[WorkOrderReceived], uow: UnitOfWork) -> None:
        await clocks.start_dispatch_clock(event, uow)

    async def on_accepted(event: Event[AssignmentAccepted], uow: UnitOfWork) -> None:
        await clocks.stop_dispatch_clock(event, uow)

    async def on_assigned(event: Event[WorkOrderAssigned], uow: UnitOfWork) -> None:
        await clocks.stop_dispatch_clock_on_assignment(event, uow)

    async def on_cancelled(event: Event[WorkOrderCancelled], uow: UnitOfWork) -> None:
        await clocks.stop_clocks_of_cancelled_order(event, uow)

    return [
        EventConsumer(
            name="clocks",
            topics=[Topic.WORKORDERS_EVENTS, Topic.CONTRACTORS_EVENTS],
            handlers={
                WorkOrderReceived: on_received,
                AssignmentAccepted: on_accepted,
                WorkOrderAssigned: on_assigned,
                WorkOrderCancelled: on_cancelled,
            },
            checks=[require_owner],
            preload=clocks.preload,
            description="Starts a dispatch clock per received work order; an accepted or "
            "assigned order stops it as met; a cancelled order stops its clocks without their "
            "milestone.",
        )
    ]


__all__ = ["require_owner", "sla_consumers"]
