"""The Kafka side: every lifecycle event of a work order is a fact for its clocks.

The sla service reads only the orders service's topic (``fixloop.workorders.events.v1``, keyed
by work order): all of an order's facts come in order on one partition, and the member of the
consumer group that owns the partition owns the order's timers
(:class:`~fixloop_sla.adapters.timers.ClockTimers`).
"""

from __future__ import annotations

from typing import Any

from fixloop_shared.contracts import (
    LIFECYCLE_EVENTS,
    EventPayload,
    LifecycleFacts,
    WorkOrderAwaitingParts,
    WorkOrderDelayed,
    WorkOrderEnRoute,
    WorkOrderOnSite,
    WorkOrderProgressReported,
    WorkOrderReceived,
)
from fixloop_shared.envelope import Event
from fixloop_shared.errors import UnauthorizedSource
from fixloop_shared.kernel import EventConsumer, PartitionOwnership, UnitOfWork
from fixloop_shared.topics import Service, Topic
from fixloop_shared.vocabulary import ActorKind, WorkOrderState
from fixloop_sla.app.engine import SlaEngine
from fixloop_sla.domain import FactKind, OrderFact, OrderProfile

CLOCK_TOPIC = Topic.WORKORDERS_EVENTS
OWNERS: dict[type[object], Service] = {
    WorkOrderReceived: Service.ORDERS,
    **dict.fromkeys(LIFECYCLE_EVENTS, Service.ORDERS),
}
"""Only the service that owns an event type may emit it (its CloudEvents ``source``)."""


def require_owner(event: Event[Any]) -> None:
    owner = OWNERS.get(type(event.payload))
    if owner is not None and event.envelope.source != owner.value:
        msg = f"{event.envelope.type} must come from {owner.value!r}, not {event.envelope.source!r}"
        raise UnauthorizedSource(msg)


def received_fact(event: Event[WorkOrderReceived]) -> tuple[OrderFact, OrderProfile]:
    received = event.payload
    fact = OrderFact(
        event_id=event.envelope.id,
        kind=FactKind.RECEIVED,
        occurred_at=received.received_at,
        state=WorkOrderState.RECEIVED,
        actor=ActorKind.SYSTEM,
        order_version=1,
    )
    profile = OrderProfile(
        tenant=received.tenant,
        priority=received.priority.value,
        equipment_class=received.equipment.equipment_class,
        category=received.category.value,
        site_timezone=received.site.timezone,
    )
    return fact, profile


def lifecycle_fact(event: Event[Any]) -> OrderFact:
    """The fact of one lifecycle event (its step from ``fixloop.workorder.<step>.v1``)."""
    payload: LifecycleFacts = event.payload
    step = event.envelope.type.split(".")[2]
    eta = None
    cause = None
    if isinstance(
        payload,
        WorkOrderEnRoute | WorkOrderOnSite | WorkOrderAwaitingParts | WorkOrderProgressReported,
    ):
        eta = payload.eta
    elif isinstance(payload, WorkOrderDelayed):
        eta, cause = payload.new_eta, payload.cause
    return OrderFact(
        event_id=event.envelope.id,
        kind=FactKind(step),
        occurred_at=payload.occurred_at,
        state=payload.state,
        actor=payload.actor.kind,
        order_version=payload.version,
        eta=eta,
        cause=cause,
        reason=payload.reason,
    )


def sla_consumers(engine: SlaEngine, ownership: PartitionOwnership) -> list[EventConsumer]:
    async def on_received(event: Event[WorkOrderReceived], uow: UnitOfWork) -> None:
        fact, profile = received_fact(event)
        await engine.record(
            event, uow, fact, work_order_id=event.payload.work_order_id, profile=profile
        )

    async def on_step(event: Event[Any], uow: UnitOfWork) -> None:
        fact = lifecycle_fact(event)
        payload: LifecycleFacts = event.payload  # registered for lifecycle events only
        await engine.record(
            event,
            uow,
            fact,
            work_order_id=payload.work_order_id,
            contractor_id=payload.contractor_id,
        )

    handlers: dict[type[EventPayload], Any] = {WorkOrderReceived: on_received}
    handlers.update(dict.fromkeys(LIFECYCLE_EVENTS, on_step))
    return [
        EventConsumer(
            name="clocks",
            topics=[CLOCK_TOPIC],
            handlers=handlers,
            checks=[require_owner],
            preload=engine.preload,
            ownership=ownership,
            description="Every lifecycle event of a work order moves its milestone clocks: "
            "started, paused, resumed, stopped, cancelled, replayed when late; the pod that "
            "owns the order's partition fires its warnings, breaches and escalations.",
        )
    ]


__all__ = ["CLOCK_TOPIC", "lifecycle_fact", "received_fact", "require_owner", "sla_consumers"]
